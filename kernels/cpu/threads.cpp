// CPU threads: the count (KNOT_NUM_THREADS if set, else every core OpenMP sees) and the denormal
// mode of every compute thread.
//
// Denormals: f32 values below 1.2e-38 take a microcode assist on x86, ~100x the cost of a normal
// operation. KAN layers produce them in training (B-spline terms near a knot, their gradients): a
// seed-sized kanformer-kan run went from 0.45 s to 3.5 s per step between steps 500 and 1000 with
// weights that hold no denormal themselves, and one step with step-1000 weights took 12.4 s with
// denormals and 1.3 s without. So knot sets flush-to-zero and denormals-are-zero (MXCSR FTZ|DAZ)
// on every OpenMP thread, as TensorFlow does by default (PyTorch: torch.set_flush_denormal(True)):
// results below 1.2e-38 (2.2e-308 in f64) become 0. KNOT_FLUSH_DENORMALS=0 keeps IEEE denormals.
#include <omp.h>

#include <cstdlib>
#include <string>

#if defined(__SSE__) || defined(__x86_64__)
#include <immintrin.h>
#define KNOT_HAS_MXCSR 1
#else
#define KNOT_HAS_MXCSR 0
#endif

#include "kernels/cpu/loops.h"

namespace knot {
namespace {

bool flush_wanted() {
  const char* s = std::getenv("KNOT_FLUSH_DENORMALS");
  return !(s && std::string(s) == "0");
}

// Sets (or clears) FTZ|DAZ on the calling thread and on every thread of OpenMP's pool: libgomp
// keeps its worker threads between parallel regions, so a team of the current size reuses them.
void apply_denormal_mode() {
#if KNOT_HAS_MXCSR
  const bool on = flush_wanted();
  auto set = [on] {
    constexpr unsigned kFtzDaz = 0x8040;  // MXCSR bit 15 (flush to zero) | bit 6 (denormals are zero)
    const unsigned csr = _mm_getcsr();
    _mm_setcsr(on ? (csr | kFtzDaz) : (csr & ~kFtzDaz));
  };
  set();
#pragma omp parallel num_threads(omp_get_max_threads())
  set();
#endif
}

struct ThreadInit {
  ThreadInit() {
    if (const char* s = std::getenv("KNOT_NUM_THREADS")) {
      const int n = std::atoi(s);
      if (n > 0) omp_set_num_threads(n);
    }
    apply_denormal_mode();
  }
} g_thread_init;
}  // namespace

int num_threads() { return omp_get_max_threads(); }
void set_num_threads(int n) {
  KNOT_CHECK(n > 0, "set_num_threads: need at least one thread, got {}", n);
  omp_set_num_threads(n);
  apply_denormal_mode();  // threads the larger team may add
}

bool flushes_denormals() {
#if KNOT_HAS_MXCSR
  return (_mm_getcsr() & 0x8040) == 0x8040;
#else
  return false;
#endif
}

}  // namespace knot
