// The CPU thread pool (see thread_pool.h for why and what it promises).
//
// One job at a time. A job is (call, ctx, nchunks) and a 64-bit state word: the job's generation in
// the high half, the next unclaimed chunk in the low half. Whoever takes part (the caller, any
// worker) claims chunks with a compare-and-swap on that word, so a worker that wakes up late, after
// its job has finished or a newer one has started, fails its claim (the generation differs) and
// touches nothing. The caller returns once `done` counts every chunk: all chunks are claimed when
// its own claim loop ends, so it waits only for chunks a running thread has in hand.
// A new job first closes the state word (its generation, no chunk open), then writes its fields,
// then opens it. Without the close, a late worker could read the old job's final state, then the
// new job's larger chunk count, and still win the compare-and-swap on the old word: it ran a chunk
// that did not exist (or one of the new job twice) and counted it, and the caller waited forever for
// a count it had passed (tests/test_threads.cpp, "back-to-back jobs of growing size").
#include "kernels/cpu/thread_pool.h"

#include <omp.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <limits>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__SSE2__)
#include <immintrin.h>
#define KNOT_CPU_RELAX() _mm_pause()
#else
#define KNOT_CPU_RELAX() std::this_thread::yield()
#endif

#include "core/runtime.h"

namespace knot {
namespace kernels::cpu {
namespace {

thread_local bool t_in_chunk = false;

// How long an idle worker polls for the next job before it sleeps: long enough to catch the next
// op of a step without a futex wake-up, short enough not to keep a core from another process.
constexpr auto kWorkerSpin = std::chrono::microseconds(50);
// How long the caller polls for chunks still running on workers before it sleeps.
constexpr auto kCallerSpin = std::chrono::microseconds(20);

template <typename Pred>
bool spin_until(Pred&& pred, std::chrono::microseconds limit) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 1;; ++i) {
    if (pred()) return true;
    KNOT_CPU_RELAX();
    if ((i & 63) == 0 && std::chrono::steady_clock::now() - t0 > limit) return false;
  }
}

// The low half of a closed state word: above any chunk count (run_chunks keeps counts below it).
constexpr uint64_t kClosed = 0xFFFFFFFFu;

class Pool {
 public:
  // Runs a job on the calling thread and the workers; the caller holds job_mu_.
  void run(uint32_t n, void (*call)(void*, int64_t), void* ctx, int workers) {
    resize(workers);
    ++gen_;
    // Closed: no chunk can be claimed from here on, of the old job or the new one. The fields below are
    // release stores and workers read them with acquire: a worker that sees any new field then sees
    // this store too, so its compare-and-swap against the old job's state fails.
    state_.store((static_cast<uint64_t>(gen_) << 32) | kClosed, std::memory_order_relaxed);
    failed_.store(false, std::memory_order_relaxed);
    error_ = nullptr;
    done_.store(0, std::memory_order_relaxed);
    call_.store(call, std::memory_order_release);
    ctx_.store(ctx, std::memory_order_release);
    nchunks_.store(n, std::memory_order_release);
    state_.store(static_cast<uint64_t>(gen_) << 32, std::memory_order_release);  // open: chunk 0 is next
    wake_.fetch_add(1, std::memory_order_release);
    wake_.notify_all();
    work();  // the caller claims chunks like any worker
    uint32_t d = done_.load(std::memory_order_acquire);
    if (d != n && !spin_until([&] { return (d = done_.load(std::memory_order_acquire)) == n; }, kCallerSpin)) {
      while ((d = done_.load(std::memory_order_acquire)) != n) done_.wait(d, std::memory_order_acquire);
    }
    if (failed_.load(std::memory_order_relaxed)) {
      std::exception_ptr e = error_;
      error_ = nullptr;
      std::rethrow_exception(e);
    }
  }

  std::mutex job_mu;  // held by the thread whose job runs (and while the workers are replaced)

 private:
  // Claims and runs chunks of the current job until none is left (or a newer job has started).
  void work() {
    uint64_t s = state_.load(std::memory_order_acquire);
    const uint64_t gen = s >> 32;
    // Read after the state: they belong to generation `gen` or a later one. A claim below succeeds only
    // while the word still holds `gen` open; fields of a later job were written after that job closed
    // the word (acquire here, release there), so with them in hand the claim fails.
    void (*call)(void*, int64_t) = call_.load(std::memory_order_acquire);
    void* ctx = ctx_.load(std::memory_order_acquire);
    const uint32_t n = nchunks_.load(std::memory_order_acquire);
    for (;;) {
      if ((s >> 32) != gen || static_cast<uint32_t>(s) >= n) return;
      if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      const uint32_t chunk = static_cast<uint32_t>(s);
      if (!failed_.load(std::memory_order_relaxed)) {
        t_in_chunk = true;
        try {
          call(ctx, chunk);
        } catch (...) {
          std::lock_guard<std::mutex> lk(error_mu_);
          if (!error_) error_ = std::current_exception();
          failed_.store(true, std::memory_order_relaxed);
        }
        t_in_chunk = false;
      }
      if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == n) done_.notify_all();
      s = state_.load(std::memory_order_acquire);
    }
  }

  void worker_main(uint32_t seen) {
    init_compute_thread();
    omp_set_num_threads(1);  // GEMMs inside a chunk (Eigen, oneDNN) stay on this thread
    for (;;) {
      uint32_t w = wake_.load(std::memory_order_acquire);
      if (w == seen && !spin_until([&] { return (w = wake_.load(std::memory_order_acquire)) != seen; }, kWorkerSpin)) {
        while ((w = wake_.load(std::memory_order_acquire)) == seen) wake_.wait(seen, std::memory_order_acquire);
      }
      seen = w;
      if (stop_.load(std::memory_order_acquire)) return;
      work();
    }
  }

  void resize(int workers) {
    if (static_cast<int>(workers_.size()) == workers) return;
    if (!workers_.empty()) {
      stop_.store(true, std::memory_order_release);
      wake_.fetch_add(1, std::memory_order_release);
      wake_.notify_all();
      for (std::thread& t : workers_) t.join();
      workers_.clear();
      stop_.store(false, std::memory_order_relaxed);
    }
    const uint32_t seen = wake_.load(std::memory_order_relaxed);
    for (int i = 0; i < workers; ++i) {
      try {
        workers_.emplace_back([this, seen] { worker_main(seen); });
      } catch (const std::system_error&) {
        break;  // fewer workers: the caller and the others still run every chunk
      }
    }
  }

  std::vector<std::thread> workers_;
  std::atomic<uint32_t> wake_{0};  // bumped for every job (and to stop the workers); they wait on it
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> state_{0};  // (generation << 32) | next unclaimed chunk
  std::atomic<void (*)(void*, int64_t)> call_{nullptr};
  std::atomic<void*> ctx_{nullptr};
  std::atomic<uint32_t> nchunks_{0};
  std::atomic<uint32_t> done_{0};  // chunks finished (run or skipped after a failure)
  std::atomic<bool> failed_{false};
  std::mutex error_mu_;
  std::exception_ptr error_;
  uint32_t gen_ = 0;
};

// Never destroyed: a kernel may still run from a static destructor at exit, and the workers end
// with the process.
Pool& pool() {
  static Pool* p = new Pool;
  return *p;
}

void run_inline(int64_t nchunks, void (*call)(void*, int64_t), void* ctx) {
  for (int64_t c = 0; c < nchunks; ++c) call(ctx, c);
}

}  // namespace

bool in_parallel_region() { return t_in_chunk; }

SerialGemmScope::SerialGemmScope() : saved_(omp_get_max_threads()) { omp_set_num_threads(1); }
SerialGemmScope::~SerialGemmScope() { omp_set_num_threads(saved_); }

void run_chunks(int64_t nchunks, void (*call)(void*, int64_t), void* ctx) {
  if (nchunks <= 0) return;
  const int nt = num_threads();
  if (nchunks == 1 || nt <= 1 || t_in_chunk || nchunks >= std::numeric_limits<uint32_t>::max()) {
    run_inline(nchunks, call, ctx);
    return;
  }
  Pool& p = pool();
  std::unique_lock<std::mutex> lk(p.job_mu, std::try_to_lock);
  if (!lk.owns_lock()) {  // another thread's job holds the pool
    run_inline(nchunks, call, ctx);
    return;
  }
  // While this thread runs chunks, OpenMP code inside them (an Eigen or oneDNN GEMM) stays on it.
  SerialGemmScope serial;
  p.run(static_cast<uint32_t>(nchunks), call, ctx, nt - 1);
}

}  // namespace kernels::cpu
}  // namespace knot
