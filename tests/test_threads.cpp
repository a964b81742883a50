// The thread count (KNOT_NUM_THREADS, train.threads, their limit and precedence) and knot's CPU
// thread pool (kernels/cpu/thread_pool.h): coverage, nesting, exceptions, concurrent callers,
// denormal mode of its threads, and results that do not depend on the thread count.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "kernels/cpu/loops.h"
#include "kernels/cpu/thread_pool.h"
#include "ops/attention.h"
#include "tests/op_reference.h"

using namespace knot;
using namespace knot::test;
using kernels::cpu::in_parallel_region;
using kernels::cpu::parallel_chunks;
using kernels::cpu::parallel_for;

namespace {

// Restores the thread count and KNOT_NUM_THREADS when a test ends (however it ends).
struct ThreadState {
  int saved = num_threads();
  std::optional<std::string> env;
  ThreadState() {
    if (const char* s = std::getenv("KNOT_NUM_THREADS")) env = s;
  }
  ~ThreadState() {
    if (env) setenv("KNOT_NUM_THREADS", env->c_str(), 1);
    else unsetenv("KNOT_NUM_THREADS");
    set_num_threads(saved);
  }
};

}  // namespace

TEST_CASE("threads: the count is bounded (100000 crashed libgomp)", "[core][threads]") {
  ThreadState state;
  const int limit = max_num_threads();
  REQUIRE(limit >= 4);
  REQUIRE(limit % 4 == 0);
  REQUIRE_THROWS_WITH(set_num_threads(100000), Catch::Contains("100000 threads is above the limit of " + std::to_string(limit) + " (4 x the"));
  REQUIRE_THROWS_WITH(set_num_threads(limit + 1), Catch::Contains("limit"));
  set_num_threads(limit);  // the limit itself is fine
  REQUIRE(num_threads() == limit);
  unsetenv("KNOT_NUM_THREADS");
  REQUIRE_THROWS_WITH(apply_thread_setting(100000, "train.threads"),
                      Catch::Contains("config key 'train.threads' = 100000 is above the limit of " +
                                      std::to_string(limit) + " (4 x the"));
  REQUIRE_THROWS_WITH(apply_thread_setting(-1, "train.threads"),
                      Catch::Contains("config key 'train.threads' = -1: a thread count must be >= 0"));
  REQUIRE(num_threads() == limit);  // a rejected setting changes nothing
}

TEST_CASE("threads: KNOT_NUM_THREADS must be a whole number in range (it was silently ignored)", "[core][threads]") {
  ThreadState state;
  const std::string limit = std::to_string(max_num_threads());
  for (const char* bad : {"abc", "-1", "0", "2.5", "2x", " 2", "+2", "-99999999999"}) {
    CAPTURE(bad);
    setenv("KNOT_NUM_THREADS", bad, 1);
    REQUIRE_THROWS_WITH(apply_thread_setting(0, "train.threads"),
                        Catch::Contains("KNOT_NUM_THREADS='" + std::string(bad) +
                                        "' is not a thread count: expected a whole number from 1 to " + limit));
  }
  for (const char* huge : {"100000", "99999999999"}) {
    CAPTURE(huge);
    setenv("KNOT_NUM_THREADS", huge, 1);
    REQUIRE_THROWS_WITH(apply_thread_setting(0, "train.threads"),
                        Catch::Contains("KNOT_NUM_THREADS=" + std::string(huge) + " is above the limit of " +
                                        limit + " (4 x the"));
  }
  setenv("KNOT_NUM_THREADS", "", 1);  // empty: as if unset
  set_num_threads(3);
  apply_thread_setting(0, "train.threads");
  REQUIRE(num_threads() == 3);
}

TEST_CASE("threads: KNOT_NUM_THREADS wins over a config's train.threads", "[core][threads]") {
  ThreadState state;
  set_num_threads(3);
  unsetenv("KNOT_NUM_THREADS");
  apply_thread_setting(2, "train.threads");  // no variable: the config sets it
  REQUIRE(num_threads() == 2);
  apply_thread_setting(0, "train.threads");  // 0 leaves it
  REQUIRE(num_threads() == 2);
  setenv("KNOT_NUM_THREADS", "1", 1);
  apply_thread_setting(2, "train.threads");  // configs/*.json used to say "threads": 2 and win
  REQUIRE(num_threads() == 1);
  apply_thread_setting(0, "train.threads");
  REQUIRE(num_threads() == 1);
  setenv("KNOT_NUM_THREADS", "3", 1);
  apply_thread_setting(2, "train.threads");
  REQUIRE(num_threads() == 3);
}

TEST_CASE("thread pool: every chunk runs exactly once, for any thread count", "[core][threads]") {
  ThreadState state;
  for (int threads : {1, 2, 3, 7}) {
    set_num_threads(threads);
    for (int64_t n : {0, 1, 2, 5, 64, 1000}) {
      CAPTURE(threads, n);
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      parallel_chunks(n, [&](int64_t c) { hits[static_cast<size_t>(c)].fetch_add(1); });
      for (int64_t c = 0; c < n; ++c) REQUIRE(hits[static_cast<size_t>(c)].load() == 1);
    }
    // parallel_for: [0, n) covered once by disjoint ranges of >= grain elements (but the last).
    for (int64_t n : {1, 100, 4097, 100000}) {
      for (int64_t grain : {1, 7, 1000}) {
        CAPTURE(threads, n, grain);
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::atomic<int> ranges{0}, short_ranges{0}, empty{0};
        parallel_for(n, grain, [&](int64_t b, int64_t e) {  // (no REQUIRE off the test's thread)
          if (b >= e) empty.fetch_add(1);
          ranges.fetch_add(1);
          if (e - b < grain && e != n) short_ranges.fetch_add(1);
          for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
        });
        for (int64_t i = 0; i < n; ++i) REQUIRE(hits[static_cast<size_t>(i)].load() == 1);
        REQUIRE(empty.load() == 0);
        REQUIRE(ranges.load() <= std::max<int64_t>(1, kernels::cpu::kChunksPerThread * threads));
        if (n <= grain || threads == 1) REQUIRE(ranges.load() == 1);
        if (n >= 2 * grain) REQUIRE(short_ranges.load() == 0);
      }
    }
  }
}

// A worker that woke late for a finished job could read that job's final state and then the next job's
// chunk count, written before the next job was published, and claim a chunk that did not exist: it ran
// an old context's chunk past its end or a new job's chunk twice, and its extra count of finished
// chunks left the caller waiting forever (a hang seen in `knot fit`, 2026-12-07).
TEST_CASE("thread pool: back-to-back jobs of growing size never run a chunk twice or past the end",
          "[core][threads]") {
  ThreadState state;
  struct Job {
    int64_t n = 0;
    std::atomic<int> hits[8];
    std::atomic<int> past_end{0};
  };
  constexpr int kJobs = 300000;
  std::vector<Job> jobs(kJobs);  // every job's context stays valid, so a stale chunk is counted, not a crash
  for (int threads : {2, 3}) {
    set_num_threads(threads);
    for (auto& j : jobs) {
      for (auto& h : j.hits) h.store(0);
      j.past_end.store(0);
    }
    for (int k = 0; k < kJobs; ++k) {
      Job& j = jobs[static_cast<size_t>(k)];
      j.n = k % 2 ? 8 : 2;  // small, then larger: the next count exceeds the old final claim index
      kernels::cpu::run_chunks(
          j.n,
          [](void* p, int64_t c) {
            Job& job = *static_cast<Job*>(p);
            if (c >= job.n || c < 0) {
              job.past_end.fetch_add(1);
              return;
            }
            job.hits[c].fetch_add(1);
          },
          &j);
    }
    int64_t twice = 0, missed = 0, past = 0;
    for (const Job& j : jobs) {
      past += j.past_end.load();
      for (int64_t c = 0; c < j.n; ++c) {
        twice += j.hits[c].load() > 1;
        missed += j.hits[c].load() == 0;
      }
    }
    CAPTURE(threads, twice, missed, past);
    REQUIRE(twice == 0);
    REQUIRE(missed == 0);
    REQUIRE(past == 0);
  }
}

TEST_CASE("thread pool: the caller and the workers share the chunks, nested loops run inline", "[core][threads]") {
  ThreadState state;
  set_num_threads(2);
  REQUIRE_FALSE(in_parallel_region());
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<int> on_caller{0}, nested_inline{0}, nested_calls{0}, in_region{0};
  const int64_t n = 64;
  parallel_chunks(n, [&](int64_t) {  // (no REQUIRE off the test's thread)
    if (in_parallel_region()) in_region.fetch_add(1);
    if (std::this_thread::get_id() == caller) on_caller.fetch_add(1);
    const std::thread::id me = std::this_thread::get_id();
    parallel_for(1 << 20, 1, [&](int64_t b, int64_t e) {  // would be many chunks outside a chunk
      nested_calls.fetch_add(1);
      if (b == 0 && e == (1 << 20) && std::this_thread::get_id() == me) nested_inline.fetch_add(1);
    });
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  });
  REQUIRE_FALSE(in_parallel_region());
  REQUIRE(in_region.load() == n);
  REQUIRE(nested_calls.load() == n);
  REQUIRE(nested_inline.load() == n);
  REQUIRE(on_caller.load() >= 1);  // the calling thread claims chunks itself
}

TEST_CASE("thread pool: an exception in a chunk reaches the caller, and the pool still works", "[core][threads]") {
  ThreadState state;
  for (int threads : {1, 2, 7}) {
    CAPTURE(threads);
    set_num_threads(threads);
    std::atomic<int> ran{0};
    REQUIRE_THROWS_WITH(parallel_chunks(100,
                                        [&](int64_t c) {
                                          ran.fetch_add(1);
                                          if (c == 3) throw std::runtime_error("chunk 3 failed");
                                        }),
                        "chunk 3 failed");
    REQUIRE(ran.load() >= 4);  // chunks 0..3 ran (one at a time or in parallel), later ones may be skipped
    REQUIRE_THROWS_WITH(parallel_for(100000, 10,
                                     [&](int64_t b, int64_t e) {
                                       if (e > 50000) throw Error("range at " + std::to_string(b));
                                     }),
                        Catch::StartsWith("range at "));
    std::atomic<int64_t> total{0};
    parallel_chunks(50, [&](int64_t c) { total.fetch_add(c); });
    REQUIRE(total.load() == 49 * 50 / 2);
  }
}

TEST_CASE("thread pool: two threads calling at once both get every chunk run", "[core][threads]") {
  ThreadState state;
  set_num_threads(3);
  auto job = [](std::atomic<int64_t>& sum) {
    for (int rep = 0; rep < 200; ++rep)
      parallel_chunks(37, [&](int64_t c) { sum.fetch_add(c + 1); });
  };
  std::atomic<int64_t> a{0}, b{0};
  std::thread other([&] { job(b); });  // runs inline whenever the pool is busy with the other's job
  job(a);
  other.join();
  REQUIRE(a.load() == 200 * 37 * 38 / 2);
  REQUIRE(b.load() == 200 * 37 * 38 / 2);
}

TEST_CASE("thread pool: its threads flush denormals to zero", "[core][threads]") {
  ThreadState state;
  set_num_threads(3);
  std::atomic<int> flushing{0}, off_caller{0};
  const std::thread::id caller = std::this_thread::get_id();
  parallel_chunks(64, [&](int64_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // time for every worker to wake up
    if (flushes_denormals()) flushing.fetch_add(1);
    if (std::this_thread::get_id() != caller) off_caller.fetch_add(1);
  });
  REQUIRE(flushing.load() == 64);
  REQUIRE(off_caller.load() > 0);  // so the workers were checked too, not only the caller
}

TEST_CASE("thread pool: kernels give bit-identical results for 1, 2 and 7 threads", "[core][threads]") {
  ThreadState state;
  Generator gen(77);
  const Tensor x = randn({257, 300}, DType::f32, &gen);     // sums down the columns: a column per chunk
  const Tensor a = randn({16, 40, 33}, DType::f32, &gen);   // batched matmul: a GEMM per chunk
  const Tensor b = randn({16, 33, 29}, DType::f32, &gen);
  const Tensor q = randn({2, 8, 40, 16}, DType::f32, &gen);  // attention: a head per chunk
  const Tensor k = randn({2, 8, 40, 16}, DType::f32, &gen);
  const Tensor v = randn({2, 8, 40, 16}, DType::f32, &gen);
  auto run = [&](int threads) {
    set_num_threads(threads);
    std::vector<std::vector<double>> out;
    out.push_back(sum(x, {0}).to_vector<double>());
    out.push_back(var(x, {1}).to_vector<double>());
    out.push_back(softmax(x, 1).to_vector<double>());
    out.push_back(matmul(a, b).to_vector<double>());
    Generator g(5);
    out.push_back(randn({200000}, DType::f32, &g).to_vector<double>());  // above the draw grain
    const Tensor qq = q.detach(), kk = k.detach(), vv = v.detach();
    qq.requires_grad_();
    kk.requires_grad_();
    AttentionOptions opt;
    opt.causal = true;
    const Tensor o = scaled_dot_product_attention(qq, kk, vv, opt);
    sum(mul(o, o)).backward();
    out.push_back(o.to_vector<double>());
    out.push_back(qq.grad().to_vector<double>());
    out.push_back(kk.grad().to_vector<double>());
    return out;
  };
  const auto one = run(1), two = run(2), seven = run(7);
  for (size_t i = 0; i < one.size(); ++i) {
    CAPTURE(i);
    REQUIRE(one[i] == two[i]);
    REQUIRE(one[i] == seven[i]);
  }
}
