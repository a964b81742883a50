// Compute threads of the CPU backend (defined in kernels/cpu/threads.cpp).
// KNOT_NUM_THREADS sets the count at start-up (default: all cores); every compute thread flushes
// denormals to zero unless KNOT_FLUSH_DENORMALS=0.
#pragma once

namespace knot {

// The number of threads CPU kernels use.
int num_threads();
// Sets the thread count, and the denormal mode of any thread it adds.
void set_num_threads(int n);
// Whether the calling thread flushes denormals to zero.
bool flushes_denormals();

}  // namespace knot
