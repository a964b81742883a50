// knot's own CPU thread pool: the parallel loops of the CPU kernels (kernels/cpu/loops.h) run on it
// instead of OpenMP parallel regions.
//
// Why: on a shared machine the OS deschedules a compute thread now and then (an evaluation beside
// training, a build beside both). An OpenMP region ends in a barrier that waits for every thread
// of the team, so each region of a step waits for the descheduled one (measured on 2 cores next to
// one busy process: 2 threads at 0.6x the tokens/s of 1 thread; docs/benchmarks.md). Here the
// calling thread claims chunks of the work from the same atomic counter as the workers and waits
// only for chunks a worker has actually claimed: a worker that has not woken up yet claims nothing
// and holds nothing up, the caller and the running workers do its share.
//
// Workers are persistent (num_threads() - 1 of them, made or replaced at the first job after the
// count changes). Between jobs a worker spins for a few microseconds (a step issues its jobs back
// to back) and then sleeps on a futex, so an idle pool does not take a core from another process.
// Every worker flushes denormals like every other compute thread (kernels/cpu/threads.cpp) and
// runs its chunks with OpenMP's thread count set to 1, so an Eigen or oneDNN GEMM inside a chunk
// stays on that thread. The caller does the same while it runs chunks.
//
// Results: a chunk's work is the caller's function of the chunk index alone, so which thread runs
// which chunk changes nothing; how the caller splits its work into chunks decides whether results
// depend on the thread count (parallel_for: disjoint outputs, so they do not).
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

namespace knot {
namespace kernels::cpu {

// Whether the calling thread is running a chunk of a pool job (nested jobs run inline there).
bool in_parallel_region();

// Runs call(ctx, c) for every c in [0, nchunks) on the calling thread and the pool's workers, and
// returns when all have finished. If a chunk throws, chunks not yet started are skipped and the
// first exception is rethrown here. Runs everything inline (in order, on the calling thread) when
// nchunks < 2, num_threads() == 1, inside a chunk, or while another thread's job holds the pool.
void run_chunks(int64_t nchunks, void (*call)(void*, int64_t), void* ctx);

// fn(c) for every chunk index c in [0, nchunks), as run_chunks.
template <typename F>
void parallel_chunks(int64_t nchunks, F&& fn) {
  using Fn = std::remove_reference_t<F>;
  run_chunks(nchunks, [](void* p, int64_t c) { (*static_cast<Fn*>(p))(c); },
             const_cast<void*>(static_cast<const void*>(&fn)));
}

// Sets up the calling thread as a compute thread: denormal mode (kernels/cpu/threads.cpp).
void init_compute_thread();

// OpenMP's thread count is 1 on this thread while it lives (then back to what it was): an Eigen or
// oneDNN GEMM called meanwhile runs on this thread alone, starting no OpenMP team.
class SerialGemmScope {
 public:
  SerialGemmScope();
  ~SerialGemmScope();
  SerialGemmScope(const SerialGemmScope&) = delete;
  SerialGemmScope& operator=(const SerialGemmScope&) = delete;

 private:
  int saved_;
};

}  // namespace kernels::cpu
}  // namespace knot
