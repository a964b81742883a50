// The CPU backend's run-time settings, declared here for every layer and implemented by the kernels
// (kernels/cpu/threads.cpp, kernels/cpu/linalg.cpp): code above the kernels reads and sets them here,
// never through kernels/cpu/.
//
// Compute threads. The count: KNOT_NUM_THREADS if set (a whole number from 1 to max_num_threads()), else a config's
// train.threads if > 0, else all cores; KNOT_NUM_THREADS wins over the config. It is read at first
// use; a bad value throws knot::Error naming the variable and the limit (the knot command calls
// init_threads() at start-up, so it reports that before doing anything). Every compute thread
// flushes denormals to zero unless KNOT_FLUSH_DENORMALS=0.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace knot {

// The number of threads CPU kernels use (reads KNOT_NUM_THREADS on the first call).
int num_threads();
// Sets the thread count (1 ... max_num_threads(), else throws), and the denormal mode of any thread
// it adds. Not affected by KNOT_NUM_THREADS (that is apply_thread_setting's job).
void set_num_threads(int n);
// The most threads knot runs: 4 x the hardware threads (more only adds waiting).
int max_num_threads();
// Reads KNOT_NUM_THREADS now (once; later calls do nothing): throws knot::Error if it is not a whole
// number from 1 to max_num_threads().
void init_threads();
// A config's thread count, e.g. apply_thread_setting(cfg.threads, "train.threads"): checks
// 0 <= value <= max_num_threads() (the error names `key`); then KNOT_NUM_THREADS, when set, wins;
// else value > 0 sets the count and 0 leaves it (all cores unless something set it).
void apply_thread_setting(int64_t config_value, const char* key);
// Whether the calling thread flushes denormals to zero.
bool flushes_denormals();

// fn(begin, end) over [0, n) on the CPU backend's thread pool, for host loops above the kernels (random
// number fills, least-squares set-up, data preparation): the same split as the kernels' own
// kernels::cpu::parallel_for (n <= grain, one thread, or a call from inside a parallel loop runs
// fn(0, n) inline; else contiguous chunks of at least grain elements). fn must write disjoint outputs
// per index; then the result does not depend on the thread count.
void host_parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// The precision of f32 GEMMs on the CPU, like torch.set_float32_matmul_precision:
//   highest  f32 products and sums (the default);
//   bf16     operands rounded to bfloat16, products summed in f32, f32 result: Intel AMX / AVX512-BF16
//            through oneDNN, ~5-10x the f32 GEMM speed on a CPU that has them. Applies to the GEMMs
//            oneDNN runs (every Linear / KANLinear projection); f64, attention's per-head GEMMs and
//            CUDA are unaffected. On a CPU without bf16 support it warns once and stays f32.
// Start-up value: the KNOT_MATMUL_PRECISION environment variable; `knot train` sets it from
// train.matmul_precision.
enum class MatmulPrecision : uint8_t { highest, bf16 };
MatmulPrecision parse_matmul_precision(const std::string& s);  // "highest" (or "f32") | "bf16"
const char* matmul_precision_name(MatmulPrecision p);
void set_matmul_precision(MatmulPrecision p);
MatmulPrecision matmul_precision();
// Whether this build runs its f32 GEMMs through oneDNN (CMake KNOT_ONEDNN); without it every GEMM
// is Eigen's and the bf16 precision has no effect.
bool onednn_available();

}  // namespace knot
