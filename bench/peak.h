// Measured peak FMA throughput of this machine (the denominator of "fraction of peak").
#pragma once

namespace knot::bench {

// GFLOP/s of an FMA-only loop on float vectors (8- and, with AVX-512, 16-wide: the larger), on
// `threads` threads (measured once, cached).
double peak_gflops_f32(int threads);

}  // namespace knot::bench
