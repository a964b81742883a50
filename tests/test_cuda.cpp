// CUDA backend parity: every CUDA kernel against the CPU kernel on fresh random inputs, with
// relative error bounds per dtype (f64 1e-12, f32 1e-5), poisoned outputs to catch unwritten
// elements, gradients through the autograd on both devices, dropout masks equal to the CPU's,
// and the caching allocator's statistics back at baseline afterwards.
//
// Without a GPU (or without the CUDA backend) every test here prints
// "skipped: no CUDA device (<reason>)" and passes; ctest reports it as skipped (label "cuda").
// The one exception checks, where no GPU exists, that asking for CUDA memory is a clear error.
#include <chrono>
#include <cmath>
#include <iostream>
#include <limits>

#include "kernels/attention.h"
#include "kernels/bases/chebyshev.h"
#include "kernels/bases/eval.h"
#include "kernels/dropout.h"
#include "kernels/embedding.h"
#include "kernels/indexing.h"
#include "kernels/loss.h"
#include "kernels/norm.h"
#include "kernels/spline.h"
#include "kernels/elementwise.h"
#include "kernels/linalg.h"
#include "kernels/optim.h"
#include "kernels/reduce.h"
#include "kernels/softmax.h"
#include "tests/helpers.h"
#ifdef KNOT_HAS_CUDA
#include "kernels/cuda/runtime.h"
#endif

using namespace knot;

namespace {

const char* no_gpu_reason() {
#ifdef KNOT_HAS_CUDA
  return cuda_unavailable_reason();
#else
  return "the CUDA backend is not compiled in";
#endif
}

#define KNOT_REQUIRE_GPU()                                                                \
  do {                                                                                    \
    if (!::knot::cuda_available()) {                                                      \
      std::cout << "skipped: no CUDA device (" << no_gpu_reason() << ")" << std::endl;   \
      return;                                                                             \
    }                                                                                     \
  } while (0)

const Device kGpu = Device::cuda(0);

// A fresh seed per call (printed on failure), so each run draws new inputs.
uint64_t fresh_seed() {
  static uint64_t base = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return base++;
}

Tensor random(const Shape& s, DType dt, double lo = -2.0, double hi = 2.0) {
  Generator g(fresh_seed());
  if (dt == DType::i32 || dt == DType::i64) return randint(static_cast<int64_t>(lo), static_cast<int64_t>(hi), s, dt, &g);
  return rand(s, dt, &g, lo, hi);
}

double tol(DType dt) { return dt == DType::f64 ? 1e-12 : dt == DType::f32 ? 1e-5 : 0.0; }

// Each element within rel·max(1, |ref|) of the CPU reference; NaN only where the reference is NaN.
void require_close(const Tensor& gpu, const Tensor& cpu, double rel, const std::string& what) {
  INFO(what);
  REQUIRE(gpu.is_cuda());
  REQUIRE(gpu.shape() == cpu.shape());
  REQUIRE(gpu.dtype() == cpu.dtype());
  const auto a = gpu.to_vector<double>(), b = cpu.to_vector<double>();
  double worst = 0;
  size_t worst_i = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(b[i])) {
      INFO("element " << i << " should be NaN, got " << a[i]);
      REQUIRE(std::isnan(a[i]));
      continue;
    }
    INFO("element " << i << ": gpu " << a[i] << " cpu " << b[i]);
    REQUIRE(!std::isnan(a[i]));  // also catches poisoned elements nobody wrote
    if (std::isinf(b[i])) {
      REQUIRE(a[i] == b[i]);
      continue;
    }
    const double e = std::abs(a[i] - b[i]) / std::max(1.0, std::abs(b[i]));
    if (e > worst) { worst = e; worst_i = i; }
  }
  INFO("worst relative error " << worst << " at element " << worst_i);
  REQUIRE(worst <= rel);
}

// Poisons the cache: a NaN-filled block of this size is freed right before the kernel runs, so
// the kernel's output (same size bucket) most likely lands on NaNs and unwritten elements show.
void poison_next_alloc(const Shape& s, DType dt) {
  if (dt != DType::f32 && dt != DType::f64) return;
  Tensor t = empty(s, dt, kGpu);
  kernels::fill(t, std::numeric_limits<double>::quiet_NaN());
}

#ifdef KNOT_HAS_CUDA
struct AllocatorBaseline {
  size_t live = cuda_memory_stats().live_bytes;
  ~AllocatorBaseline() {
    if (std::uncaught_exceptions() == 0) CHECK(cuda_memory_stats().live_bytes == live);
  }
};
#define KNOT_ALLOC_BASELINE() AllocatorBaseline knot_baseline_
#else
#define KNOT_ALLOC_BASELINE() (void)0
#endif

const UnaryOp kUnary[] = {UnaryOp::neg,  UnaryOp::exp,       UnaryOp::log,       UnaryOp::sqrt,     UnaryOp::abs,
                          UnaryOp::pow_scalar, UnaryOp::clamp, UnaryOp::relu,    UnaryOp::gelu_erf, UnaryOp::gelu_tanh,
                          UnaryOp::silu, UnaryOp::sigmoid,   UnaryOp::tanh,      UnaryOp::elu,      UnaryOp::leaky_relu,
                          UnaryOp::softplus, UnaryOp::sin,   UnaryOp::cos};
const BinaryOp kBinary[] = {BinaryOp::add, BinaryOp::sub,     BinaryOp::mul,     BinaryOp::div, BinaryOp::pow,
                            BinaryOp::maximum, BinaryOp::minimum, BinaryOp::eq, BinaryOp::ne,  BinaryOp::lt,
                            BinaryOp::le,  BinaryOp::gt,      BinaryOp::ge};

}  // namespace

TEST_CASE("cuda: asking for CUDA memory without a GPU is a clear error", "[cuda]") {
  if (cuda_available()) return;  // only meaningful where there is no GPU
  try {
    (void)zeros({2}, DType::f32, Device::cuda());
    FAIL("creating a CUDA tensor without a GPU should throw");
  } catch (const Error& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find("CUDA") != std::string::npos);
  }
  CHECK(cuda_device_count() == 0);
}

TEST_CASE("cuda: unary forward and backward match the CPU", "[cuda]") {
  KNOT_REQUIRE_GPU();
  KNOT_ALLOC_BASELINE();
  for (DType dt : {DType::f32, DType::f64}) {
    for (UnaryOp op : kUnary) {
      const bool positive = op == UnaryOp::log || op == UnaryOp::sqrt || op == UnaryOp::pow_scalar;
      const double a = op == UnaryOp::pow_scalar ? 2.5 : op == UnaryOp::clamp ? -0.5 : 0.1;
      const double b = op == UnaryOp::clamp ? 0.7 : 0.0;
      for (const Shape& s : std::vector<Shape>{{1037}, {3, 65, 7}, {}}) {
        const Tensor x = random(s, dt, positive ? 0.1 : -3.0, 3.0);
        const Tensor xg = x.to(kGpu);
        poison_next_alloc(s, dt);
        const Tensor y_cpu = kernels::unary(op, x, a, b);
        const Tensor y_gpu = kernels::unary(op, xg, a, b);
        const std::string name = std::string(unary_name(op)) + " " + dtype_name(dt) + " " + shape_str(s);
        require_close(y_gpu, y_cpu, tol(dt), name);
        const Tensor g = random(s, dt);
        const Tensor gx_cpu = kernels::unary_bwd(op, x, y_cpu, g, a, b);
        poison_next_alloc(s, dt);
        const Tensor gx_gpu = kernels::unary_bwd(op, xg, y_gpu, g.to(kGpu), a, b);
        require_close(gx_gpu, gx_cpu, tol(dt), name + " backward");
      }
    }
    // A misaligned, non-contiguous input (a strided slice) takes the general path.
    const Tensor big = random({9, 33}, dt);
    const Tensor view_cpu = big.slice(1, 1, 33, 2);
    const Tensor view_gpu = big.to(kGpu).slice(1, 1, 33, 2);
    require_close(kernels::unary(UnaryOp::tanh, view_gpu), kernels::unary(UnaryOp::tanh, view_cpu), tol(dt), "tanh on a view");
  }
}

TEST_CASE("cuda: binary ops with broadcasting match the CPU for every dtype", "[cuda]") {
  KNOT_REQUIRE_GPU();
  KNOT_ALLOC_BASELINE();
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{1031}, {1031}}, {{4, 5, 6}, {6}}, {{4, 1, 6}, {1, 5, 1}}, {{2, 3, 4, 5}, {}}, {{3, 1}, {1, 7}}, {{0, 3}, {3}}};
  for (DType dt : {DType::f32, DType::f64, DType::i32, DType::i64}) {
    for (BinaryOp op : kBinary) {
      const bool integer = dt == DType::i32 || dt == DType::i64;
      if (integer && (op == BinaryOp::div || op == BinaryOp::pow)) continue;  // int division by 0 / overflow
      for (const auto& [sx, sy] : shapes) {
        const bool positive = op == BinaryOp::pow;
        const Tensor x = random(sx, dt, positive ? 0.5 : -5.0, positive ? 2.0 : 5.0);
        const Tensor y = random(sy, dt, positive ? 0.5 : -5.0, positive ? 2.0 : 5.0);
        const std::string name = std::string(binary_name(op)) + " " + dtype_name(dt) + " " + shape_str(sx) + " " +
                                 shape_str(sy);
        poison_next_alloc(broadcast_shapes(sx, sy, "test"), dt);
        require_close(kernels::binary(op, x.to(kGpu), y.to(kGpu)), kernels::binary(op, x, y), tol(dt), name);
      }
    }
    // Non-contiguous and offset operands.
    const Tensor x = random({6, 8}, dt), y = random({8, 6}, dt);
    const Tensor xt = x.to(kGpu), yt = y.to(kGpu);
    require_close(kernels::binary(BinaryOp::mul, xt, yt.t()), kernels::binary(BinaryOp::mul, x, y.t()), tol(dt), "mul, transposed");
    require_close(kernels::binary(BinaryOp::add, xt.slice(1, 1, 8), yt.t().slice(1, 0, 7)),
                  kernels::binary(BinaryOp::add, x.slice(1, 1, 8), y.t().slice(1, 0, 7)), tol(dt), "add, offset views");
  }
}

TEST_CASE("cuda: copies between host and device, strided and converting", "[cuda]") {
  KNOT_REQUIRE_GPU();
  KNOT_ALLOC_BASELINE();
  const Tensor x = random({5, 6, 7}, DType::f64);
  // Round trip, contiguous.
  require_close(x.to(kGpu), x, 0.0, "H2D");
  const Tensor back = x.to(kGpu).to(Device::cpu());
  REQUIRE(back.to_vector<double>() == x.to_vector<double>());
  // Strided source and destination on every side, with dtype conversion and broadcasting.
  const std::vector<DType> dts = {DType::f32, DType::f64, DType::i32, DType::i64};
  for (DType sd : dts) {
    for (DType dd : dts) {
      const Tensor src = random({7, 5}, sd, -50, 50);
      const Tensor src_view = src.t();  // (5, 7), non-contiguous
      Tensor ref = empty({3, 5, 7}, dd);
      kernels::copy(ref, src_view);  // broadcast over the leading dim
      // H2D into a strided device destination.
      Tensor dbig = empty({3, 7, 5}, dd, kGpu);
      kernels::fill(dbig, std::nan(""));
      const Tensor dview = dbig.transpose(1, 2);  // (3, 5, 7)
      kernels::copy(dview, src_view);
      const std::string name = std::string(dtype_name(sd)) + " -> " + dtype_name(dd);
      require_close(dview.contiguous(), ref, 0.0, name + " H2D strided");
      // D2D strided.
      Tensor d2 = empty({3, 5, 7}, dd, kGpu);
      kernels::fill(d2, std::nan(""));
      kernels::copy(d2, src_view.to(kGpu));
      require_close(d2, ref, 0.0, name + " D2D strided");
      // D2H into a strided host destination.
      Tensor hbig = full({3, 7, 5}, -1.0, dd);
      kernels::copy(hbig.transpose(1, 2), src.to(kGpu).t());
      REQUIRE(hbig.transpose(1, 2).contiguous().to_vector<double>() == ref.to_vector<double>());
    }
  }
}

TEST_CASE("cuda: fill, axpy and scale on views", "[cuda]") {
  KNOT_REQUIRE_GPU();
  KNOT_ALLOC_BASELINE();
  for (DType dt : {DType::f32, DType::f64, DType::i64}) {
    const Tensor base = random({6, 9}, dt, -9, 9);
    Tensor c = base.clone();
    Tensor g = base.to(kGpu);
    kernels::fill(c.slice(1, 2, 9, 3), 4.0);
    kernels::fill(g.slice(1, 2, 9, 3), 4.0);
    require_close(g, c, 0.0, "fill on a strided view");
    const Tensor src = random({9}, dt, -9, 9);
    kernels::axpy(c.t().slice(0, 0, 9), src.unsqueeze(1).expand({9, 6}), 0.5);
    kernels::axpy(g.t().slice(0, 0, 9), src.to(kGpu).unsqueeze(1).expand({9, 6}), 0.5);
    require_close(g, c, tol(dt), "axpy broadcast into a transposed view");
    kernels::scale(c.slice(0, 1, 5), 3.0);
    kernels::scale(g.slice(0, 1, 5), 3.0);
    require_close(g, c, tol(dt), "scale on a slice");
  }
}

TEST_CASE("cuda: sum, var, max and min match the CPU and are deterministic", "[cuda]") {
  KNOT_REQUIRE_GPU();
  KNOT_ALLOC_BASELINE();
  const std::vector<std::pair<Shape, std::vector<int>>> cases = {
      {{37, 129}, {1}},   {{37, 129}, {0}},     {{4, 5, 6}, {1}},      {{4, 5, 6}, {0, 2}},     {{4, 5, 6}, {0, 1, 2}},
      {{3, 70000}, {1}},  {{70000, 3}, {0}},    {{2, 3, 4, 5}, {1, 2}}, {{1 << 20}, {0}},        {{5, 0, 3}, {1}}};
  for (DType dt : {DType::f32, DType::f64, DType::i32, DType::i64}) {
    for (const auto& [s, dims] : cases) {
      const Tensor x = random(s, dt, -100, 100);
      const Tensor xg = x.to(kGpu);
      const std::string name = std::string(dtype_name(dt)) + " " + shape_str(s);
      poison_next_alloc(kernels::reduced_shape(s, dims), dt);
      const Tensor sg = kernels::sum(xg, dims);
      // Long f32 sums: both sides accumulate in f64, only the order differs.
      require_close(sg, kernels::sum(x, dims), dt == DType::f32 ? 1e-6 : tol(dt), "sum " + name);
      REQUIRE(kernels::sum(xg, dims).to_vector<double>() == sg.to_vector<double>());  // same bits again
      if (dt == DType::f32 || dt == DType::f64) {
        require_close(kernels::var(xg, dims, 1), kernels::var(x, dims, 1), tol(dt), "var " + name);
        if (s.size() >= 2)  // a strided input (static review #1: a 1-D tensor has no dim 1 to swap)
          require_close(kernels::var(xg.transpose(0, 1), dims, 0), kernels::var(x.transpose(0, 1), dims, 0), tol(dt),
                        "var transposed " + name);
      }
    }
    // max / min along each dim, with ties.
    const Tensor x = random({6, 7, 8}, dt, -3, 3);
    const Tensor xi = (dt == DType::f32 || dt == DType::f64) ? kernels::unary(UnaryOp::relu, x) : x;  // many ties at 0
    for (int dim = 0; dim < 3; ++dim) {
      for (bool take_max : {true, false}) {
        const auto c = kernels::max_min(xi, dim, take_max);
        const auto g = kernels::max_min(xi.to(kGpu), dim, take_max);
        require_close(g.values, c.values, 0.0, "max/min values");
        REQUIRE(g.indices.to_vector<int64_t>() == c.indices.to_vector<int64_t>());
        if (dt == DType::f32 || dt == DType::f64) {
          const Tensor gr = random(c.values.shape(), dt);
          require_close(kernels::max_min_bwd(gr.to(kGpu), g.indices, xi.shape(), dim),
                        kernels::max_min_bwd(gr, c.indices, xi.shape(), dim), 0.0, "max/min backward");
        }
      }
    }
  }
  // NaN wins, first NaN index.
  const Tensor nanx = from_values({1, NAN, 3, NAN, 5}, {5}, DType::f64);
  REQUIRE(kernels::max_min(nanx.to(kGpu), 0, true).indices.item() == 1);
}

TEST_CASE("cuda: matmul through cuBLAS matches the CPU", "[cuda]") {
  KNOT_REQUIRE_GPU();
  KNOT_ALLOC_BASELINE();
  struct Case { Shape a, b; bool ta, tb; };
  const std::vector<Case> cases = {
      {{33, 17}, {17, 9}, false, false}, {{17, 33}, {17, 9}, true, false}, {{33, 17}, {9, 17}, false, true},
      {{17, 33}, {9, 17}, true, true},   {{4, 33, 17}, {17, 9}, false, false}, {{2, 1, 8, 5}, {3, 5, 6}, false, false},
      {{1, 5}, {5, 1}, false, false},    {{8, 0}, {0, 4}, false, false},   {{3, 64, 128}, {3, 128, 96}, false, true}};
  for (DType dt : {DType::f32, DType::f64}) {
    for (const auto& c : cases) {
      const Tensor a = random(c.a, dt), b = random(c.b, dt);
      const std::string name = std::string(dtype_name(dt)) + " " + shape_str(c.a) + (c.ta ? "ᵀ" : "") + " x " +
                               shape_str(c.b) + (c.tb ? "ᵀ" : "");
      // K sums of products: a few ulps times sqrt(K) of error in f32, and cuBLAS may split K in another
      // order than ours (static review #3: K = 128 reaches 1.3e-5 with a 4-way split): 1e-4 from K = 64.
      const int64_t K = c.ta ? c.a[c.a.size() - 2] : c.a.back();
      require_close(kernels::matmul(a.to(kGpu), b.to(kGpu), c.ta, c.tb), kernels::matmul(a, b, c.ta, c.tb),
                    dt == DType::f64 ? 1e-12 : (K >= 64 ? 1e-4 : 1e-5), name);
    }
    // Transposed views (flags folded into cuBLAS ops), a strided view (copied) and a permuted batch
    // (non-uniform batch strides: one GEMM per batch).
    // (static review #2: the shapes of the first version did not chain.) a.transpose(1, 2) is
    // (4, 5, 6), b.permute({1, 0, 2}) is (4, 6, 7); the sliced rows have stride 2, so they are copied.
    const Tensor a = random({4, 6, 5}, dt), b = random({6, 4, 7}, dt);
    const Tensor ag = a.to(kGpu), bg = b.to(kGpu);
    require_close(kernels::matmul(ag.transpose(1, 2), bg.permute({1, 0, 2}), false, false),
                  kernels::matmul(a.transpose(1, 2), b.permute({1, 0, 2}), false, false), tol(dt) * 10, "views");
    require_close(kernels::matmul(ag.transpose(1, 2).slice(1, 0, 5, 2), bg.permute({1, 0, 2}), false, false),
                  kernels::matmul(a.transpose(1, 2).slice(1, 0, 5, 2), b.permute({1, 0, 2}), false, false),
                  tol(dt) * 10, "strided views");
  }
}

TEST_CASE("cuda: AdamW and SGD steps match the CPU", "[cuda]") {
  KNOT_REQUIRE_GPU();
  KNOT_ALLOC_BASELINE();
  for (DType dt : {DType::f32, DType::f64}) {
    const Tensor p = random({1000}, dt), g = random({1000}, dt);
    Tensor m = random({1000}, dt, 0, 0.1), v = random({1000}, dt, 0, 0.1);
    Tensor pc = p.clone(), mc = m.clone(), vc = v.clone();
    Tensor pg = p.to(kGpu), mg = m.to(kGpu), vg = v.to(kGpu);
    const AdamHyper h{1e-2, 0.9, 0.999, 1e-8, 0.01, true, 3};
    kernels::adam_step(pc, g, mc, vc, h);
    kernels::adam_step(pg, g.to(kGpu), mg, vg, h);
    require_close(pg, pc, tol(dt) * 10, "adamw p");
    require_close(mg, mc, tol(dt), "adamw m");
    require_close(vg, vc, tol(dt), "adamw v");
    Tensor buf = random({1000}, dt), bufg = buf.to(kGpu);
    kernels::sgd_step(pc, g, buf, 0.1, 0.9, 1e-4, true);
    kernels::sgd_step(pg, g.to(kGpu), bufg, 0.1, 0.9, 1e-4, true);
    require_close(pg, pc, tol(dt) * 10, "sgd p");
    require_close(bufg, buf, tol(dt), "sgd momentum");
  }
}

TEST_CASE("cuda: dropout masks equal the CPU's for the same seed", "[cuda]") {
  KNOT_REQUIRE_GPU();
  KNOT_ALLOC_BASELINE();
  for (DType dt : {DType::f32, DType::f64}) {
    const Tensor x = random({17, 129}, dt, 0.5, 2.0);  // no zeros: a zero output means dropped
    const Tensor yc = kernels::dropout_fwd(x, 0.3, 1234, 7);
    const Tensor yg = kernels::dropout_fwd(x.to(kGpu), 0.3, 1234, 7);
    require_close(yg, yc, tol(dt), "dropout forward");
    const Tensor g = random({17, 129}, dt);
    require_close(kernels::dropout_bwd(g.to(kGpu).t().contiguous().t(), 0.3, 1234, 7), kernels::dropout_bwd(g, 0.3, 1234, 7),
                  tol(dt), "dropout backward on a non-contiguous gradient");
    // A data-parallel rank's element offset (core/rng.h batch_element_offset), odd so a row starts
    // mid Philox group.
    require_close(kernels::dropout_fwd(x.to(kGpu), 0.3, 1234, 7, 1291), kernels::dropout_fwd(x, 0.3, 1234, 7, 1291),
                  tol(dt), "dropout forward with an element offset");
  }
}

TEST_CASE("cuda: gradients through the autograd match the CPU", "[cuda]") {
  KNOT_REQUIRE_GPU();
  KNOT_ALLOC_BASELINE();
  for (DType dt : {DType::f32, DType::f64}) {
    const Tensor x0 = random({8, 12}, dt), w0 = random({12, 5}, dt), b0 = random({5}, dt);
    auto run = [&](Device d) {
      Tensor x = x0.to(d).detach(), w = w0.to(d).detach(), b = b0.to(d).detach();
      x.requires_grad_();
      w.requires_grad_();
      b.requires_grad_();
      Tensor h = gelu(add(matmul(x, w), b));
      Tensor loss = sum(mul(h, tanh(h)));
      loss.backward();
      return std::vector<Tensor>{loss, x.grad(), w.grad(), b.grad()};
    };
    const auto c = run(Device::cpu());
    const auto g = run(kGpu);
    const char* names[] = {"loss", "dx", "dw", "db"};
    for (int i = 0; i < 4; ++i) require_close(g[i], c[i], dt == DType::f64 ? 1e-11 : 1e-4, names[i]);
  }
}

#ifdef KNOT_HAS_CUDA
TEST_CASE("cuda: the caching allocator reuses blocks and returns to baseline", "[cuda]") {
  KNOT_REQUIRE_GPU();
  cuda_synchronize();
  const CudaMemoryStats s0 = cuda_memory_stats();
  {
    Tensor a = empty({1000}, DType::f32, kGpu);
    const CudaMemoryStats s1 = cuda_memory_stats();
    CHECK(s1.live_bytes >= s0.live_bytes + 4000);
    CHECK(s1.peak_bytes >= s1.live_bytes);
  }
  const CudaMemoryStats s2 = cuda_memory_stats();
  CHECK(s2.live_bytes == s0.live_bytes);
  CHECK(s2.cached_bytes >= 4000);
  { Tensor b = empty({1000}, DType::f32, kGpu); }  // same bucket: served from the cache
  CHECK(cuda_memory_stats().cache_hits > s2.cache_hits);
  cuda_empty_cache();
  const CudaMemoryStats s3 = cuda_memory_stats();
  CHECK(s3.cached_bytes == 0);
  CHECK(s3.reserved_bytes == s3.live_bytes);
  CHECK(std::string(cuda_device_name(0)).size() > 0);
  // Errors name the op and the device.
  REQUIRE_THROWS_WITH(empty({2}, DType::f32, Device::cuda(cuda_device_count())), Catch::Contains("does not exist"));
}
#endif

// ---- fused nn kernels: spline, attention, layer norm, cross-entropy, embedding, indexing ----------

namespace {

// Knots of `in` features: uniform on [lo − k·h, hi + k·h] with G intervals on [lo, hi] (h = (hi−lo)/G),
// each feature shifted a little so the features differ.
Tensor spline_grid(int64_t in, int G, int k, DType dt) {
  const int64_t nk = G + 2 * k + 1;
  std::vector<double> v(static_cast<size_t>(in * nk));
  for (int64_t i = 0; i < in; ++i) {
    const double lo = -1.5 + 0.05 * static_cast<double>(i % 5), hi = 1.5 + 0.03 * static_cast<double>(i % 3);
    const double h = (hi - lo) / G;
    for (int64_t j = 0; j < nk; ++j) v[static_cast<size_t>(i * nk + j)] = lo + h * static_cast<double>(j - k);
  }
  return from_vector(v, {in, nk}).to(dt);
}

// Relative bound for sums of many products (GEMM-shaped results): f32 sums differ in order.
double sum_tol(DType dt) { return dt == DType::f64 ? 1e-11 : 1e-4; }

}  // namespace

TEST_CASE("cuda: B-spline KAN kernels match the CPU", "[cuda]") {
  KNOT_REQUIRE_GPU();
  KNOT_ALLOC_BASELINE();
  for (DType dt : {DType::f32, DType::f64}) {
    for (int k : {3, 2}) {
      for (int G : {5, 20}) {
        for (bool base : {true, false}) {
          const int64_t N = 37, in = 11, out = 13, nb = G + k;
          const Tensor grid = spline_grid(in, G, k, dt);
          const Tensor x = random({N, in}, dt, -2.2, 2.2);  // some points outside the grid
          const Tensor bw = base ? random({out, in}, dt) : Tensor();
          const Tensor coeff = random({out, in, nb}, dt);
          const Tensor gx = x.to(kGpu), ggrid = grid.to(kGpu), gbw = base ? bw.to(kGpu) : Tensor(),
                       gcoeff = coeff.to(kGpu);
          const std::string name = std::string(dtype_name(dt)) + " k=" + std::to_string(k) + " G=" +
                                   std::to_string(G) + (base ? " base" : "");
          for (bool deriv : {false, true}) {
            poison_next_alloc({N, in, nb}, dt);
            require_close(kernels::bspline_basis(gx, ggrid, k, deriv), kernels::bspline_basis(x, grid, k, deriv),
                          sum_tol(dt), name + (deriv ? " basis derivative" : " basis"));
          }
          const Tensor y_cpu = kernels::kan_bspline_fwd(x, grid, bw, coeff, k, kernels::SplinePath::automatic);
          poison_next_alloc({N, out}, dt);
          const Tensor y_gpu = kernels::kan_bspline_fwd(gx, ggrid, gbw, gcoeff, k, kernels::SplinePath::automatic);
          require_close(y_gpu, y_cpu, sum_tol(dt), name + " forward");
          const Tensor g = random({N, out}, dt);
          const auto c = kernels::kan_bspline_bwd(x, grid, bw, coeff, g, k, kernels::SplinePath::automatic, true, true,
                                                  true);
          const auto d = kernels::kan_bspline_bwd(gx, ggrid, gbw, gcoeff, g.to(kGpu), k,
                                                  kernels::SplinePath::automatic, true, true, true);
          require_close(d.dx, c.dx, sum_tol(dt), name + " dx");
          require_close(d.dcoeff, c.dcoeff, sum_tol(dt), name + " dcoeff");
          if (base) require_close(d.dbase_w, c.dbase_w, sum_tol(dt), name + " dbase");
          // Deterministic: a second run gives the same bits.
          const auto d2 = kernels::kan_bspline_bwd(gx, ggrid, gbw, gcoeff, g.to(kGpu), k,
                                                   kernels::SplinePath::automatic, true, false, true);
          REQUIRE(d2.dx.to_vector<double>() == d.dx.to_vector<double>());
          REQUIRE(d2.dcoeff.to_vector<double>() == d.dcoeff.to_vector<double>());
          REQUIRE(!d2.dbase_w.defined());
        }
      }
    }
  }
}

TEST_CASE("cuda: generic-basis KAN kernels match the CPU", "[cuda]") {
  KNOT_REQUIRE_GPU();
  KNOT_ALLOC_BASELINE();
  const int D = 4;
  const kernels::BasisEval cheb = basis::make_basis_eval(D + 1, [D](auto x, int64_t, auto* phi, auto* dphi) {
    basis::chebyshev_eval(x, D, phi, dphi);
  });
  for (DType dt : {DType::f32, DType::f64}) {
    const int64_t N = 29, in = 7, out = 9;
    const Tensor x = random({N, in}, dt), w = random({out, in, D + 1}, dt), g = random({N, out}, dt);
    poison_next_alloc({N, out}, dt);
    require_close(kernels::kan_basis_fwd(x.to(kGpu), w.to(kGpu), cheb), kernels::kan_basis_fwd(x, w, cheb),
                  sum_tol(dt), "chebyshev forward");
    const auto c = kernels::kan_basis_bwd(x, w, g, cheb, true, true);
    const auto d = kernels::kan_basis_bwd(x.to(kGpu), w.to(kGpu), g.to(kGpu), cheb, true, true);
    require_close(d[0], c[0], sum_tol(dt), "chebyshev dx");
    require_close(d[1], c[1], sum_tol(dt), "chebyshev dw");
  }
}

TEST_CASE("cuda: fused attention matches the CPU (masks, causal, dropout)", "[cuda]") {
  KNOT_REQUIRE_GPU();
  KNOT_ALLOC_BASELINE();
  struct Case { int64_t B, H, T, S, Dk, Dv; bool causal, pad; double p; };
  const Case cases[] = {{2, 3, 17, 17, 8, 8, false, false, 0.0}, {2, 2, 33, 33, 16, 12, true, false, 0.0},
                        {1, 2, 5, 40, 8, 8, true, true, 0.0},    {2, 1, 40, 40, 32, 32, false, true, 0.2},
                        {1, 1, 24, 24, 64, 64, true, true, 0.1}, {2, 2, 9, 9, 4, 4, true, true, 0.0}};
  for (DType dt : {DType::f32, DType::f64}) {
    for (const Case& cs : cases) {
      kernels::AttentionParams p;
      p.causal = cs.causal;
      p.scale = 1.0 / std::sqrt(static_cast<double>(cs.Dk));
      p.dropout_p = cs.p;
      p.seed = fresh_seed();
      p.draw = 3;
      p.dropout_offset = cs.p > 0 ? 77 : 0;  // a data-parallel rank's first element (core/rng.h)
      // (B, T, H, D) storage seen as (B, H, T, D): strided operands, as the model passes them.
      const Tensor q = random({cs.B, cs.T, cs.H, cs.Dk}, dt).transpose(1, 2);
      const Tensor k = random({cs.B, cs.S, cs.H, cs.Dk}, dt).transpose(1, 2);
      const Tensor v = random({cs.B, cs.S, cs.H, cs.Dv}, dt).transpose(1, 2);
      Tensor mask;
      if (cs.pad) {
        std::vector<int32_t> m(static_cast<size_t>(cs.B * cs.S), 0);
        for (int64_t b = 0; b < cs.B; ++b)
          for (int64_t s = 0; s < cs.S; ++s) m[static_cast<size_t>(b * cs.S + s)] = (s % 7 == 3) || (b == 1 && s >= cs.S - 4);
        if (cs.B == 2 && cs.T == 9) for (int64_t s = 0; s < cs.S; ++s) m[static_cast<size_t>(cs.S + s)] = 1;  // all padded
        mask = from_vector(m, {cs.B, cs.S});
      }
      const std::string name = std::string(dtype_name(dt)) + " T=" + std::to_string(cs.T) + " S=" +
                               std::to_string(cs.S) + " D=" + std::to_string(cs.Dk) + (cs.causal ? " causal" : "") +
                               (cs.pad ? " padded" : "") + " p=" + std::to_string(cs.p);
      const auto fc = kernels::attention_fwd(q, k, v, mask, p);
      const Tensor gq = q.to(kGpu), gk = k.to(kGpu), gv = v.to(kGpu), gm = mask.defined() ? mask.to(kGpu) : Tensor();
      poison_next_alloc({cs.B, cs.H, cs.T, cs.Dv}, dt);
      const auto fg = kernels::attention_fwd(gq, gk, gv, gm, p);
      require_close(fg.out, fc.out, sum_tol(dt), name + " out");
      require_close(fg.lse, fc.lse, sum_tol(dt), name + " lse");
      const Tensor dout = random({cs.B, cs.H, cs.T, cs.Dv}, dt);
      const auto bc = kernels::attention_bwd(dout, q, k, v, fc.out, fc.lse, mask, p);
      const auto bg = kernels::attention_bwd(dout.to(kGpu), gq, gk, gv, fg.out, fg.lse, gm, p);
      require_close(bg.dq, bc.dq, sum_tol(dt), name + " dq");
      require_close(bg.dk, bc.dk, sum_tol(dt), name + " dk");
      require_close(bg.dv, bc.dv, sum_tol(dt), name + " dv");
      const auto bg2 = kernels::attention_bwd(dout.to(kGpu), gq, gk, gv, fg.out, fg.lse, gm, p);
      REQUIRE(bg2.dk.to_vector<double>() == bg.dk.to_vector<double>());  // deterministic
    }
  }
}

TEST_CASE("cuda: layer norm forward and backward match the CPU", "[cuda]") {
  KNOT_REQUIRE_GPU();
  KNOT_ALLOC_BASELINE();
  for (DType dt : {DType::f32, DType::f64}) {
    for (const Shape& s : std::vector<Shape>{{7, 33}, {3, 5, 256}, {300, 17}, {2, 1}}) {
      const int64_t n = s.back();
      for (bool affine : {true, false}) {
        const Tensor x = random(s, dt, -3.0, 5.0), w = affine ? random({n}, dt) : Tensor(),
                     b = affine ? random({n}, dt) : Tensor();
        const std::string name = std::string(dtype_name(dt)) + " " + shape_str(s) + (affine ? " affine" : "");
        const auto fc = kernels::layer_norm_fwd(x, w, b, n, 1e-5);
        poison_next_alloc(s, dt);
        const auto fg = kernels::layer_norm_fwd(x.to(kGpu), affine ? w.to(kGpu) : Tensor(),
                                                affine ? b.to(kGpu) : Tensor(), n, 1e-5);
        require_close(fg.y, fc.y, tol(dt), name + " y");
        require_close(fg.mean, fc.mean, tol(dt), name + " mean");
        require_close(fg.rstd, fc.rstd, tol(dt), name + " rstd");
        const Tensor g = random(s, dt);
        const auto bc = kernels::layer_norm_bwd(g, x, w, fc.mean, fc.rstd, n, true, true, true);
        const auto bg = kernels::layer_norm_bwd(g.to(kGpu), x.to(kGpu), affine ? w.to(kGpu) : Tensor(),
                                                fc.mean.to(kGpu), fc.rstd.to(kGpu), n, true, true, true);
        require_close(bg.dx, bc.dx, sum_tol(dt), name + " dx");
        require_close(bg.dweight, bc.dweight, sum_tol(dt), name + " dweight");
        require_close(bg.dbias, bc.dbias, sum_tol(dt), name + " dbias");
      }
    }
  }
}

TEST_CASE("cuda: softmax, log_softmax and logsumexp match the CPU (warp and thread modes)", "[cuda]") {
  KNOT_REQUIRE_GPU();
  KNOT_ALLOC_BASELINE();
  // dim = last: one warp per row (inner == 1); another dim: one thread per (outer, inner) column.
  const std::vector<std::pair<Shape, int>> cases = {{{7, 33}, 1},  {{3, 5, 257}, 2}, {{2, 1}, 1},
                                                    {{4, 300, 3}, 1}, {{6, 5, 4}, 0},  {{1, 4097}, 1}};
  for (DType dt : {DType::f32, DType::f64}) {
    for (const auto& [s, dim] : cases) {
      const Tensor x = random(s, dt, -30.0, 30.0);  // wide logits: the max shift matters
      const std::string name = std::string(dtype_name(dt)) + " " + shape_str(s) + " dim " + std::to_string(dim);
      require_close(kernels::logsumexp(x.to(kGpu), dim), kernels::logsumexp(x, dim), tol(dt) * 10, name + " logsumexp");
      for (bool log_space : {false, true}) {
        const std::string n2 = name + (log_space ? " log_softmax" : " softmax");
        const Tensor yc = kernels::softmax_fwd(x, dim, log_space);
        poison_next_alloc(s, dt);
        const Tensor yg = kernels::softmax_fwd(x.to(kGpu), dim, log_space);
        require_close(yg, yc, tol(dt) * 10, n2 + " forward");
        const Tensor g = random(s, dt);
        require_close(kernels::softmax_bwd(yc.to(kGpu), g.to(kGpu), dim, log_space),
                      kernels::softmax_bwd(yc, g, dim, log_space), sum_tol(dt), n2 + " backward");
      }
    }
  }
}

TEST_CASE("cuda: cross-entropy matches the CPU (ignore_index, label smoothing)", "[cuda]") {
  KNOT_REQUIRE_GPU();
  KNOT_ALLOC_BASELINE();
  for (DType dt : {DType::f32, DType::f64}) {
    for (DType it : {DType::i32, DType::i64}) {
      for (double eps : {0.0, 0.1}) {
        const int64_t M = 45, C = 1000;
        const Tensor x = random({M, C}, dt, -6.0, 6.0);
        Tensor t = random({M}, it, 0, C);
        auto tv = t.to_vector<int64_t>();
        tv[3] = -100;
        tv[17] = -100;
        t = from_vector(tv, {M}).to(it);
        const std::string name = std::string(dtype_name(dt)) + " " + dtype_name(it) + " eps=" + std::to_string(eps);
        const auto fc = kernels::cross_entropy_fwd(x, t, C, -100, eps);
        poison_next_alloc({M}, dt);
        const auto fg = kernels::cross_entropy_fwd(x.to(kGpu), t.to(kGpu), C, -100, eps);
        REQUIRE(fg.count == fc.count);
        require_close(fg.loss, fc.loss, sum_tol(dt), name + " loss");
        require_close(fg.lse, fc.lse, sum_tol(dt), name + " lse");
        const Tensor rg = random({M}, dt);
        poison_next_alloc({M, C}, dt);
        require_close(kernels::cross_entropy_bwd(x.to(kGpu), t.to(kGpu), fg.lse, rg.to(kGpu), C, -100, eps),
                      kernels::cross_entropy_bwd(x, t, fc.lse, rg, C, -100, eps), tol(dt), name + " backward");
      }
    }
  }
  // Out-of-range targets are an error, as on the CPU.
  const Tensor bad = from_vector(std::vector<int64_t>{0, 7}, {2});
  REQUIRE_THROWS(kernels::cross_entropy_fwd(random({2, 5}, DType::f32).to(kGpu), bad.to(kGpu), 5, -100, 0.0));
}

TEST_CASE("cuda: embedding and index_select match the CPU, backward deterministic", "[cuda]") {
  KNOT_REQUIRE_GPU();
  KNOT_ALLOC_BASELINE();
  for (DType dt : {DType::f32, DType::f64}) {
    for (DType it : {DType::i32, DType::i64}) {
      const int64_t V = 50, D = 24;
      const Tensor w = random({V, D}, dt);
      const Tensor ids = random({6, 31}, it, 0, V);  // many repeats
      const std::string name = std::string(dtype_name(dt)) + " " + dtype_name(it);
      poison_next_alloc({6, 31, D}, dt);
      require_close(kernels::embedding_fwd(ids.to(kGpu), w.to(kGpu)), kernels::embedding_fwd(ids, w), 0.0,
                    name + " embedding");
      const Tensor g = random({6, 31, D}, dt);
      for (int64_t pad : {int64_t{-1}, int64_t{7}}) {
        const Tensor gc = kernels::embedding_bwd(g, ids, V, pad);
        const Tensor gg = kernels::embedding_bwd(g.to(kGpu), ids.to(kGpu), V, pad);
        require_close(gg, gc, 0.0, name + " embedding backward (same order: same bits)");
      }
      // index_select along each dim of a 3-D tensor, with repeats.
      const Tensor x = random({5, 8, 6}, dt);
      for (int dim = 0; dim < 3; ++dim) {
        const Tensor index = random({11}, it, 0, x.shape()[dim]);
        const std::string nm = name + " index_select dim " + std::to_string(dim);
        require_close(kernels::index_select(x.to(kGpu), dim, index.to(kGpu)), kernels::index_select(x, dim, index),
                      0.0, nm);
        Shape gs = x.shape();
        gs[dim] = 11;
        const Tensor gi = random(gs, dt);
        require_close(kernels::index_select_bwd(gi.to(kGpu), dim, index.to(kGpu), x.shape()[dim]),
                      kernels::index_select_bwd(gi, dim, index, x.shape()[dim]), 0.0, nm + " backward");
      }
      REQUIRE_THROWS(kernels::embedding_fwd(from_vector(std::vector<int64_t>{V}, {1}).to(kGpu), w.to(kGpu)));
    }
    // cat, where, masked_fill with broadcasting and views.
    const Tensor a = random({4, 3, 5}, dt), b = random({4, 2, 5}, dt);
    require_close(kernels::cat({a.to(kGpu), b.to(kGpu)}, 1, {4, 5, 5}), kernels::cat({a, b}, 1, {4, 5, 5}), 0.0, "cat");
    const Tensor cond = random({3, 1}, DType::i32, 0, 2), xa = random({3, 4}, dt), xb = random({4}, dt);
    require_close(kernels::where(cond.to(kGpu), xa.to(kGpu), xb.to(kGpu)), kernels::where(cond, xa, xb), 0.0, "where");
    const Tensor xm = random({6, 4}, dt);  // filled through a transposed view
    const Tensor mm = random({4, 1}, DType::i64, 0, 2);
    require_close(kernels::masked_fill(xm.to(kGpu).t(), mm.to(kGpu), -7.5), kernels::masked_fill(xm.t(), mm, -7.5),
                  0.0, "masked_fill");
  }
}
