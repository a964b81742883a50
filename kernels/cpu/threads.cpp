// CPU thread count: KNOT_NUM_THREADS if set, else every core OpenMP sees.
#include <omp.h>

#include <cstdlib>
#include <string>

#include "kernels/cpu/loops.h"

namespace knot {
namespace {
struct ThreadInit {
  ThreadInit() {
    if (const char* s = std::getenv("KNOT_NUM_THREADS")) {
      const int n = std::atoi(s);
      if (n > 0) omp_set_num_threads(n);
    }
  }
} g_thread_init;
}  // namespace

int num_threads() { return omp_get_max_threads(); }
void set_num_threads(int n) {
  KNOT_CHECK(n > 0, "set_num_threads: need at least one thread, got {}", n);
  omp_set_num_threads(n);
}

}  // namespace knot
