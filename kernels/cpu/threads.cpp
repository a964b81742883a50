// CPU threads: the count and the denormal mode of every compute thread.
//
// The count: KNOT_NUM_THREADS if set, else every core OpenMP sees; a config's train.threads applies
// only when KNOT_NUM_THREADS is not set (apply_thread_setting). At most max_num_threads() = 4 x the
// hardware threads: more only adds waiting (and 100000 made libgomp crash). The variable is read at
// first use, not from a static initializer, so a bad value is an error the caller can report (the
// knot command calls init_threads() first thing and prints "knot: error: ..."). The count sizes
// knot's thread pool (kernels/cpu/thread_pool.h) and OpenMP's team (Eigen and oneDNN GEMMs).
//
// Denormals: f32 values below 1.2e-38 take a microcode assist on x86, ~100x the cost of a normal
// operation. KAN layers produce them in training (B-spline terms near a knot, their gradients): a
// seed-sized kanformer-kan run went from 0.45 s to 3.5 s per step between steps 500 and 1000 with
// weights that hold no denormal themselves, and one step with step-1000 weights took 12.4 s with
// denormals and 1.3 s without. So knot sets flush-to-zero and denormals-are-zero (MXCSR FTZ|DAZ)
// on every compute thread (OpenMP's and the pool's), as TensorFlow does by default (PyTorch:
// torch.set_flush_denormal(True)): results below 1.2e-38 (2.2e-308 in f64) become 0.
// KNOT_FLUSH_DENORMALS=0 keeps IEEE denormals.
#include <omp.h>

#include <atomic>
#include <charconv>
#include <cstdlib>
#include <mutex>
#include <string>

#if defined(__SSE__) || defined(__x86_64__)
#include <immintrin.h>
#define KNOT_HAS_MXCSR 1
#else
#define KNOT_HAS_MXCSR 0
#endif

#include "kernels/cpu/loops.h"
#include "kernels/cpu/thread_pool.h"

namespace knot {
namespace {

bool flush_wanted() {
  const char* s = std::getenv("KNOT_FLUSH_DENORMALS");
  return !(s && std::string(s) == "0");
}

void set_denormal_mode_here([[maybe_unused]] bool on) {
#if KNOT_HAS_MXCSR
  constexpr unsigned kFtzDaz = 0x8040;  // MXCSR bit 15 (flush to zero) | bit 6 (denormals are zero)
  const unsigned csr = _mm_getcsr();
  _mm_setcsr(on ? (csr | kFtzDaz) : (csr & ~kFtzDaz));
#endif
}

// Sets (or clears) FTZ|DAZ on the calling thread and on every thread of OpenMP's pool: libgomp
// keeps its worker threads between parallel regions, so a team of the current size reuses them.
// (knot's own pool threads set it when they start: kernels::cpu::init_compute_thread.)
void apply_denormal_mode() {
#if KNOT_HAS_MXCSR
  const bool on = flush_wanted();
  set_denormal_mode_here(on);
#pragma omp parallel num_threads(omp_get_max_threads())
  set_denormal_mode_here(on);
#endif
}

// Only the denormal mode at start-up (it cannot fail); the count is read at first use.
struct DenormalInit {
  DenormalInit() { apply_denormal_mode(); }
} g_denormal_init;

int hardware_threads() {
  const int n = omp_get_num_procs();
  return n > 0 ? n : 1;
}

std::atomic<int> g_threads{0};  // 0: not yet read from KNOT_NUM_THREADS
std::mutex g_init_mu;

std::string limit_text() {
  return fmt::format("{} (4 x the {} hardware threads)", max_num_threads(), hardware_threads());
}

void set_count(int n) {
  omp_set_num_threads(n);
  g_threads.store(n, std::memory_order_release);
  apply_denormal_mode();  // threads the larger OpenMP team may add
}

}  // namespace

int max_num_threads() { return 4 * hardware_threads(); }

// KNOT_NUM_THREADS: 0 when unset or empty, else checked.
static int env_num_threads() {
  const char* s = std::getenv("KNOT_NUM_THREADS");
  if (!s || !*s) return 0;
  const std::string v(s);
  int n = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  const bool digits = v[0] != '-' && ec != std::errc::invalid_argument && end == v.data() + v.size();
  KNOT_CHECK(digits && (ec == std::errc::result_out_of_range || n >= 1),
             "KNOT_NUM_THREADS='{}' is not a thread count: expected a whole number from 1 to {}", v, limit_text());
  KNOT_CHECK(ec != std::errc::result_out_of_range && n <= max_num_threads(),
             "KNOT_NUM_THREADS={} is above the limit of {}", v, limit_text());
  return n;
}

void init_threads() {
  if (g_threads.load(std::memory_order_acquire) > 0) return;
  std::lock_guard<std::mutex> lk(g_init_mu);
  if (g_threads.load(std::memory_order_relaxed) > 0) return;
  const int env = env_num_threads();  // throws on a bad value (and leaves the count unread)
  set_count(env > 0 ? env : std::min(omp_get_max_threads(), max_num_threads()));
}

int num_threads() {
  const int n = g_threads.load(std::memory_order_acquire);
  if (n > 0) return n;
  init_threads();
  return g_threads.load(std::memory_order_acquire);
}

void set_num_threads(int n) {
  KNOT_CHECK(n > 0, "set_num_threads: need at least one thread, got {}", n);
  KNOT_CHECK(n <= max_num_threads(), "set_num_threads: {} threads is above the limit of {}", n, limit_text());
  set_count(n);
}

void apply_thread_setting(int64_t config_value, const char* key) {
  KNOT_CHECK(config_value >= 0, "config key '{}' = {}: a thread count must be >= 0 (0 = all cores)", key,
             config_value);
  KNOT_CHECK(config_value <= max_num_threads(), "config key '{}' = {} is above the limit of {}", key,
             config_value, limit_text());
  if (const int env = env_num_threads(); env > 0) {  // KNOT_NUM_THREADS wins over the config
    if (num_threads() != env) set_count(env);
    return;
  }
  if (config_value > 0) set_num_threads(static_cast<int>(config_value));
}

bool flushes_denormals() {
#if KNOT_HAS_MXCSR
  return (_mm_getcsr() & 0x8040) == 0x8040;
#else
  return false;
#endif
}

void host_parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  kernels::cpu::parallel_for(n, grain, fn);
}

namespace kernels::cpu {
void init_compute_thread() { set_denormal_mode_here(flush_wanted()); }
}  // namespace kernels::cpu

}  // namespace knot
