// Core: shapes and strides, creation functions, element access, dtype/device parsing, Philox RNG
// determinism (run to run and across thread counts), allocator alignment and live-byte counting,
// error messages for misuse.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <set>

#if defined(__linux__)
#include <sys/resource.h>
#endif

#include "kernels/cpu/loops.h"
#include "tests/op_reference.h"

using namespace knot;
using namespace knot::test;

TEST_CASE("core: shapes and strides", "[core]") {
  Tensor x = zeros({2, 3, 4});
  REQUIRE(x.dim() == 3);
  REQUIRE(x.numel() == 24);
  REQUIRE(x.strides() == Shape{12, 4, 1});
  REQUIRE(x.size(-1) == 4);
  REQUIRE(x.stride(0) == 12);
  REQUIRE(x.stride(-2) == 4);
  REQUIRE(x.is_contiguous());
  REQUIRE(x.element_size() == 4);
  REQUIRE(x.nbytes() == 96);
  REQUIRE(x.desc() == "f32(2, 3, 4) cpu");
  REQUIRE_FALSE(x.transpose(0, 1).is_contiguous());
  REQUIRE(x.slice(0, 1, 2).is_contiguous());  // a single leading row is still dense
  REQUIRE(x.slice(0, 1, 2).offset() == 12);
  REQUIRE(zeros({3, 1, 2}).transpose(0, 1).is_contiguous());  // (1, 3, 2) with strides (2, 2, 1) is dense
  REQUIRE_FALSE(zeros({3, 2, 1}).transpose(0, 1).is_contiguous());
  REQUIRE(zeros({1, 3}).transpose(0, 1).is_contiguous());  // only size-1 dims moved
  REQUIRE_THROWS_WITH(x.size(3), Catch::Contains("size") && Catch::Contains("3"));
  REQUIRE_THROWS_WITH(x.stride(-4), Catch::Contains("stride"));

  REQUIRE(shape_numel({}) == 1);
  REQUIRE(shape_numel({3, 0, 2}) == 0);
  REQUIRE(contiguous_strides({2, 0, 3}) == Shape{3, 3, 1});
  REQUIRE(shape_str({4, 3}) == "(4, 3)");
  REQUIRE(shape_str({4}) == "(4,)");
  REQUIRE(shape_str({}) == "()");
  REQUIRE(broadcast_shapes({3, 1, 4}, {2, 4}, "t") == Shape{3, 2, 4});
  REQUIRE(broadcast_shapes({}, {2}, "t") == Shape{2});
  REQUIRE_THROWS_WITH(broadcast_shapes({3}, {4}, "myop"),
                      Catch::Contains("myop") && Catch::Contains("(3,)") && Catch::Contains("(4,)"));
  REQUIRE(wrap_dim(-1, 3, "t") == 2);
  REQUIRE(wrap_dim(0, 0, "t") == 0);  // a scalar accepts dim 0 / -1
  REQUIRE_THROWS_WITH(wrap_dim(3, 3, "myop"), Catch::Contains("myop") && Catch::Contains("3"));
}

TEST_CASE("core: creation functions", "[core]") {
  REQUIRE(zeros({2, 2}, DType::f64).to_vector<double>() == std::vector<double>(4, 0.0));
  REQUIRE(ones({3}, DType::i32).to_vector<int32_t>() == std::vector<int32_t>{1, 1, 1});
  REQUIRE(full({2}, 2.5).to_vector<float>() == std::vector<float>{2.5f, 2.5f});
  REQUIRE(full({2}, -7, DType::i64).to_vector<int64_t>() == std::vector<int64_t>{-7, -7});
  Tensor s = scalar_tensor(4.5, DType::f64);
  REQUIRE(s.dim() == 0);
  REQUIRE(s.numel() == 1);
  REQUIRE(s.item() == 4.5);
  REQUIRE(arange(0, 5).to_vector<double>() == std::vector<double>{0, 1, 2, 3, 4});
  REQUIRE(arange(0, 1, 0.25, DType::f64).to_vector<double>() == std::vector<double>{0, 0.25, 0.5, 0.75});
  REQUIRE(arange(5, 0, -2, DType::i64).to_vector<int64_t>() == std::vector<int64_t>{5, 3, 1});
  REQUIRE(arange(0, 1, 0.1, DType::f64).numel() == 10);
  REQUIRE(arange(3, 3).numel() == 0);
  REQUIRE(arange(3, 1).numel() == 0);
  REQUIRE_THROWS_WITH(arange(0, 1, 0), Catch::Contains("arange") && Catch::Contains("step"));

  Tensor v = from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3});
  REQUIRE(v.dtype() == DType::f64);
  REQUIRE(v.shape() == Shape{2, 3});
  REQUIRE(v.to_vector<int64_t>() == std::vector<int64_t>{1, 2, 3, 4, 5, 6});
  REQUIRE(from_vector(std::vector<int32_t>{3, 4}).dtype() == DType::i32);
  REQUIRE(from_vector(std::vector<int64_t>{3, 4}).shape() == Shape{2});
  REQUIRE(from_vector(std::vector<float>{}).numel() == 0);
  REQUIRE_THROWS_WITH(from_vector(std::vector<float>{1, 2, 3}, {2, 2}),
                      Catch::Contains("from_vector") && Catch::Contains("3") && Catch::Contains("(2, 2)"));
  Tensor fv = from_values({1.5, -2.5, 3.5}, {3}, DType::i64);
  REQUIRE(fv.to_vector<int64_t>() == std::vector<int64_t>{1, -2, 3});
  REQUIRE_THROWS_WITH(from_values({1, 2}, {3}), Catch::Contains("from_values") && Catch::Contains("(3,)"));

  Tensor t = from_values({1, 2, 3, 4, 5, 6}, {2, 3}, DType::f64);
  REQUIRE(zeros_like(t).shape() == t.shape());
  REQUIRE(zeros_like(t).dtype() == DType::f64);
  REQUIRE(ones_like(t).to_vector<double>() == std::vector<double>(6, 1.0));
  REQUIRE(empty_like(t.t()).is_contiguous());
  REQUIRE(empty_like(t.t()).shape() == Shape{3, 2});
  REQUIRE(zeros({0, 3}).numel() == 0);
  REQUIRE(zeros({2, 3, 0}).is_contiguous());  // a fresh empty tensor is dense
  REQUIRE(zeros({2, 3, 0}).view({6, 0}).shape() == Shape{6, 0});
}

TEST_CASE("core: item, to_vector and printing", "[core]") {
  Tensor t = from_values({1, 2, 3, 4, 5, 6}, {2, 3}, DType::f64);
  REQUIRE(t.t().to_vector<double>() == std::vector<double>{1, 4, 2, 5, 3, 6});
  REQUIRE(t.to_vector<float>() == std::vector<float>{1, 2, 3, 4, 5, 6});
  REQUIRE(t.select(0, 1).select(0, 2).item() == 6.0);
  REQUIRE(from_values({7}, {1, 1}, DType::i32).item() == 7.0);
  REQUIRE_THROWS_WITH(t.item(), Catch::Contains("item") && Catch::Contains("6"));
  REQUIRE(t.data<double>()[4] == 5.0);
  REQUIRE_THROWS_WITH(t.data<float>(), Catch::Contains("data") && Catch::Contains("f64"));
  REQUIRE(t.str().find("f64(2, 3)") != std::string::npos);
  REQUIRE(Tensor().str() == "Tensor(undefined)");
}

TEST_CASE("core: dtype and device parsing", "[core]") {
  REQUIRE(dtype_from_string("f32") == DType::f32);
  REQUIRE(dtype_from_string("float32") == DType::f32);
  REQUIRE(dtype_from_string("float64") == DType::f64);
  REQUIRE(dtype_from_string("int64") == DType::i64);
  REQUIRE(dtype_from_string("i32") == DType::i32);
  REQUIRE(dtype_from_string("bf16") == DType::bf16);
  REQUIRE_THROWS_WITH(dtype_from_string("f8"), Catch::Contains("dtype") && Catch::Contains("'f8'"));
  REQUIRE_THROWS_WITH(dtype_from_string(""), Catch::Contains("dtype"));
  REQUIRE(dtype_size(DType::f16) == 2);
  REQUIRE(std::string(dtype_name(DType::i64)) == "i64");

  REQUIRE(Device::parse("cpu") == Device::cpu());
  REQUIRE(Device::parse("cuda") == Device::cuda(0));
  REQUIRE(Device::parse("cuda:1") == Device::cuda(1));
  REQUIRE(Device::parse("cuda:1").str() == "cuda:1");
  REQUIRE(Device::parse("cpu").str() == "cpu");
  REQUIRE_THROWS_WITH(Device::parse("cuda:x"), Catch::Contains("device") && Catch::Contains("cuda:x"));
  REQUIRE_THROWS_WITH(Device::parse("cuda:"), Catch::Contains("device"));
  REQUIRE_THROWS_WITH(Device::parse("tpu"), Catch::Contains("device") && Catch::Contains("tpu"));
  REQUIRE_THROWS_WITH(Device::parse("CPU"), Catch::Contains("device"));
}

TEST_CASE("core: random tensors are deterministic and well distributed", "[core]") {
  Generator g1(42), g2(42), g3(43);
  const auto a1 = rand({1000}, DType::f32, &g1).to_vector<double>();
  const auto a2 = rand({1000}, DType::f32, &g2).to_vector<double>();
  const auto a3 = rand({1000}, DType::f32, &g3).to_vector<double>();
  REQUIRE(a1 == a2);
  REQUIRE(a1 != a3);
  REQUIRE(g1.draws() == 1);
  const auto b1 = rand({1000}, DType::f32, &g1).to_vector<double>();  // the second draw differs
  REQUIRE(b1 != a1);
  // a prefix of a longer draw is the same numbers (element i depends only on seed, draw, i)
  Generator g4(42);
  const auto longer = rand({2000}, DType::f32, &g4).to_vector<double>();
  REQUIRE(std::equal(a1.begin(), a1.end(), longer.begin()));
  // element i is exactly the Philox function of (seed, draw, i)
  for (int64_t i : {0, 1, 999}) REQUIRE(a1[i] == static_cast<double>(uniform_f32(philox_element(42, 0, i))));

  // manual_seed resets the default generator
  manual_seed(7);
  const auto d1 = randn({100}, DType::f64).to_vector<double>();
  manual_seed(7);
  const auto d2 = randn({100}, DType::f64).to_vector<double>();
  REQUIRE(d1 == d2);
  REQUIRE(default_generator().draws() == 1);

  // randn: mean ≈ 0, std ≈ 1; with a mean/std it is shifted and scaled
  for (DType dt : {DType::f32, DType::f64}) {
    Generator g(123);
    const auto v = randn({200000}, dt, &g).to_vector<double>();
    double m = 0, s2 = 0;
    for (double x : v) m += x;
    m /= static_cast<double>(v.size());
    for (double x : v) s2 += (x - m) * (x - m);
    const double sd = std::sqrt(s2 / static_cast<double>(v.size()));
    REQUIRE(std::abs(m) < 0.01);
    REQUIRE(std::abs(sd - 1.0) < 0.01);
    for (double x : v) REQUIRE(std::isfinite(x));
    Generator h(123);
    const auto w = randn({1000}, dt, &h, 3.0, 0.5).to_vector<double>();
    for (size_t i = 0; i < w.size(); ++i) REQUIRE(w[i] == Approx(3.0 + 0.5 * v[i]).epsilon(1e-6));
  }

  // rand within [lo, hi) and covering it
  for (DType dt : {DType::f32, DType::f64}) {
    Generator g(5);
    const auto v = rand({100000}, dt, &g, -3.0, 5.0).to_vector<double>();
    const auto [mn, mx] = std::minmax_element(v.begin(), v.end());
    REQUIRE(*mn >= -3.0);
    REQUIRE(*mx < 5.0);
    REQUIRE(*mn < -2.99);
    REQUIRE(*mx > 4.99);
    double m = 0;
    for (double x : v) m += x;
    REQUIRE(std::abs(m / static_cast<double>(v.size()) - 1.0) < 0.03);
  }

  // randint within [lo, hi), every value hit, deterministic
  Generator gi(9), gj(9);
  const auto r = randint(-2, 5, {5000}, DType::i64, &gi).to_vector<int64_t>();
  REQUIRE(r == randint(-2, 5, {5000}, DType::i64, &gj).to_vector<int64_t>());
  std::set<int64_t> seen(r.begin(), r.end());
  REQUIRE(seen == std::set<int64_t>{-2, -1, 0, 1, 2, 3, 4});
  REQUIRE(randint(0, 10, {3}, DType::i32).dtype() == DType::i32);
  REQUIRE_THROWS_WITH(randint(3, 3, {2}), Catch::Contains("randint"));
  REQUIRE_THROWS_WITH(rand({2}, DType::i64), Catch::Contains("rand"));
  REQUIRE_THROWS_WITH(randint(0, 3, {2}, DType::f32), Catch::Contains("randint"));
}

TEST_CASE("core: Philox draws do not depend on the thread count", "[core]") {
  const int saved = num_threads();
  auto draw = [](int threads) {
    set_num_threads(threads);
    Generator g(2024);
    std::vector<double> all = rand({300000}, DType::f32, &g).to_vector<double>();  // above the parallel cutoff
    const auto n = randn({300000}, DType::f64, &g).to_vector<double>();
    all.insert(all.end(), n.begin(), n.end());
    return all;
  };
  const auto one = draw(1);
  const auto four = draw(4);
  const auto three = draw(3);
  set_num_threads(saved);
  REQUIRE(num_threads() == saved);
  REQUIRE(one == four);
  REQUIRE(one == three);
  REQUIRE_THROWS_WITH(set_num_threads(0), Catch::Contains("set_num_threads"));
}

TEST_CASE("core: allocations are 64-byte aligned and counted", "[core]") {
  const size_t base = cpu_live_bytes();
  for (size_t n : {size_t{0}, size_t{1}, size_t{3}, size_t{63}, size_t{64}, size_t{65}, size_t{1000}, size_t{4097}}) {
    void* p = cpu_alloc(n);
    REQUIRE(reinterpret_cast<uintptr_t>(p) % 64 == 0);
    REQUIRE(cpu_live_bytes() >= base + n);
    cpu_free(p, n);
    REQUIRE(cpu_live_bytes() == base);
  }
  {
    std::vector<Tensor> ts;
    for (int64_t n : {1, 3, 17, 100, 1025}) {
      ts.push_back(empty({n}, DType::f32));
      ts.push_back(zeros({n, 3}, DType::f64));
      REQUIRE(reinterpret_cast<uintptr_t>(ts.back().raw_data()) % 64 == 0);
      REQUIRE(reinterpret_cast<uintptr_t>(ts[ts.size() - 2].raw_data()) % 64 == 0);
    }
    REQUIRE(cpu_live_bytes() > base);
    Tensor view = ts.back().t();  // a view holds the storage, not new bytes
    const size_t with_views = cpu_live_bytes();
    Tensor v2 = view.slice(0, 1, 2);
    REQUIRE(cpu_live_bytes() == with_views);
  }
  REQUIRE(cpu_live_bytes() == base);
  // peak tracking
  cpu_reset_peak();
  REQUIRE(cpu_peak_bytes() == cpu_live_bytes());
  { Tensor big = empty({1024}, DType::f64); }
  REQUIRE(cpu_peak_bytes() >= base + 1024 * sizeof(double));
  REQUIRE(cpu_live_bytes() == base);
  // memory returns to baseline after ops with a graph and backward
  {
    Tensor x = leaf_in({16, 16}, 1, -1, 1);
    Tensor y = sum(matmul(relu(x), x.t()) * 2.0);
    y.backward();
  }
  REQUIRE(cpu_live_bytes() == base);
}

// Freed host blocks are reused, not page-faulted in again: a training step allocates and frees the
// same large buffers every step. The "step" below allocates four blocks (a small one between
// them), writes them, and frees them. With glibc's defaults the 60 MiB block is a fresh mmap every
// time (above the largest dynamic mmap threshold, 32 MiB: 15,360 faults per step); with
// std::aligned_alloc under the allocator's malloc settings the heap grew by a block per step (glibc
// 2.36's memalign does not reuse the freed chunks); with the allocator as it is, only the warm-up
// step faults.
#if defined(__GLIBC__) && defined(__linux__) && !defined(__SANITIZE_ADDRESS__)
TEST_CASE("core: large freed host blocks are reused without new page faults", "[core]") {
  if (!cpu_alloc_keeps_freed_memory()) {
    WARN("skipped: the environment sets glibc's malloc options, which the allocator then leaves alone");
    return;
  }
  auto faults = [] {
    rusage r{};
    getrusage(RUSAGE_THREAD, &r);
    return static_cast<long>(r.ru_minflt);
  };
  constexpr size_t MiB = size_t{1} << 20;
  const size_t sizes[] = {20 * MiB, 4 * MiB, 4096 + 64, 16 * MiB, 60 * MiB};
  auto step = [&](int i) {
    void* p[5];
    for (int j = 0; j < 5; ++j) {
      // Sizes vary a little from step to step, as activations of different batches do.
      const size_t m = sizes[j] - static_cast<size_t>(i) * 64;
      p[j] = cpu_alloc(m);
      REQUIRE(reinterpret_cast<uintptr_t>(p[j]) % 64 == 0);
      std::memset(p[j], i + j, m);  // every byte of the block is usable
      REQUIRE(static_cast<unsigned char*>(p[j])[m - 1] == static_cast<unsigned char>(i + j));
    }
    for (int j = 0; j < 5; ++j) cpu_free(p[j], sizes[j] - static_cast<size_t>(i) * 64);
  };
  step(0);  // warm-up: the first use of the memory faults
  const long before = faults();
  for (int i = 1; i <= 10; ++i) step(i);
  const long added = faults() - before;
  const long pages_8mib = static_cast<long>(8 * MiB / 4096);
  INFO("page faults over 10 steps of 100 MiB each: " << added << " (8 MiB are " << pages_8mib << " pages)");
  REQUIRE(added < pages_8mib);
  cpu_release_cached_memory();  // callable at any time; later allocations still work
  step(11);
}
#endif

TEST_CASE("core: misuse gives clear errors", "[core]") {
  Tensor u;
  REQUIRE_FALSE(u.defined());
  REQUIRE_THROWS_WITH(u.shape(), Catch::Contains("undefined"));
  REQUIRE_THROWS_WITH(u.numel(), Catch::Contains("undefined"));
  REQUIRE_THROWS_WITH(exp(u), Catch::Contains("undefined"));
  REQUIRE_THROWS_WITH(add(u, ones({2})), Catch::Contains("undefined"));
  REQUIRE_THROWS_WITH(zeros({2, -1}), Catch::Contains("negative") && Catch::Contains("(2, -1)"));
  REQUIRE_THROWS_WITH(zeros({1, 1, 1, 1, 1, 1, 1}),
                      Catch::Contains("7 dims") && Catch::Contains("at most 6"));
  REQUIRE(zeros({1, 1, 1, 1, 1, 1}).dim() == 6);
  REQUIRE_THROWS_WITH(zeros({1, 1, 1, 1, 1, 1}).unsqueeze(0), Catch::Contains("unsqueeze") && Catch::Contains("6"));
  REQUIRE_THROWS_WITH(ones({64}).reshape({2, 2, 2, 2, 2, 2, 1}), Catch::Contains("at most 6"));
  REQUIRE_THROWS_WITH(ones({2}).expand({1, 1, 1, 1, 1, 1, 2}), Catch::Contains("expand") && Catch::Contains("6"));
  REQUIRE_THROWS_WITH(full({1, 1, 1, 1, 1, 1, 1}, 1.0), Catch::Contains("at most 6"));
  REQUIRE_THROWS_WITH(empty({3, -2}), Catch::Contains("empty"));
  // a 0-dim tensor has no dim 0 to ask about
  Tensor s = scalar_tensor(1.0);
  REQUIRE_THROWS_WITH(s.size(0), Catch::Contains("size") && Catch::Contains("0 dims"));
  REQUIRE_THROWS_WITH(s.stride(-1), Catch::Contains("stride"));
  REQUIRE_THROWS_WITH(s.slice(0, 0, 1), Catch::Contains("slice") && Catch::Contains("0-dim"));
  REQUIRE_THROWS_WITH(s.select(0, 0), Catch::Contains("select") && Catch::Contains("0-dim"));
}

TEST_CASE("core: rand stays below hi even when the uniform rounds up", "[core]") {
  // Element 858091 of draw 0 under seed 11 has the largest 24-bit uniform, 1 - 2^-24; in [1, 2)
  // the f32 value 1 + (1 - 2^-24) is a tie that rounds to 2.0 unless rand guards the bound.
  REQUIRE((philox_element(11, 0, 858091).v[0] >> 8) == 0xFFFFFFu);
  Generator g(11);
  Tensor t = rand({858092}, DType::f32, &g, 1.0, 2.0);
  const auto v = t.to_vector<float>();
  REQUIRE(v.back() < 2.0f);
  REQUIRE(v.back() > 1.9999f);
  REQUIRE(*std::max_element(v.begin(), v.end()) < 2.0f);
  REQUIRE(*std::min_element(v.begin(), v.end()) >= 1.0f);
}

TEST_CASE("threads: every compute thread flushes denormals to zero (KAN training speed)", "[core]") {
  // f32 denormals cost ~100x per operation; threads.cpp sets FTZ|DAZ at start-up and whenever
  // set_num_threads adds threads.
  const int saved = num_threads();
  set_num_threads(3);
  int flushing = 0, total = 0;
#pragma omp parallel num_threads(3) reduction(+ : flushing, total)
  {
    flushing += flushes_denormals() ? 1 : 0;
    total += 1;
  }
  REQUIRE(total == 3);
  REQUIRE(flushing == 3);
  REQUIRE(flushes_denormals());
  // A product below 1.2e-38 comes out as 0, and a denormal input counts as 0.
  const Tensor a = full({4096}, 1e-30, DType::f32), b = full({4096}, 1e-10, DType::f32);
  REQUIRE(max(mul(a, b)).item() == 0.0);
  uint32_t bits = 0x000b3a9bu;  // the f32 denormal ~1.03e-39, copied in bit for bit
  float tiny;
  std::memcpy(&tiny, &bits, 4);
  const Tensor d = from_vector<float>(std::vector<float>(4096, tiny), {4096});
  const float stored = d.to_vector<float>()[7];
  uint32_t stored_bits;
  std::memcpy(&stored_bits, &stored, 4);
  REQUIRE(stored_bits == bits);  // stored as that denormal (compared as bits: DAZ makes it == 0)...
  REQUIRE(max(mul(d, 1.0e30)).item() == 0.0);  // ...read as 0 (without DAZ: ~1e-9)
  set_num_threads(saved);
}
