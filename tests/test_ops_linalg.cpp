// Per-op harness for matmul and linear (ops/linalg.h): against a naive triple loop on host values
// (NumPy semantics for 1-D operands and broadcast batch dims), transpose flags, non-contiguous
// operands, gradcheck of both inputs in every case, error messages.
#include <cstring>
#include <string>

#include "kernels/cpu/loops.h"  // num_threads
#include "kernels/linalg.h"     // matmul precision
#include "tests/op_reference.h"

using namespace knot;
using namespace knot::test;

namespace {

// Naive matmul on host values: a is (..., M, K) stored, or (..., K, M) when ta; likewise b.
// 1-D operands are promoted as in NumPy and the added dim removed from the result.
std::vector<double> matmul_ref(const Tensor& a_t, const Tensor& b_t, bool ta, bool tb, Shape* out_shape) {
  const std::vector<double> av = a_t.to_vector<double>(), bv = b_t.to_vector<double>();
  Shape sa = a_t.shape(), sb = b_t.shape();
  const bool a1 = sa.size() == 1, b1 = sb.size() == 1;
  if (a1 && b1) {
    double s = 0;
    for (size_t i = 0; i < av.size(); ++i) s += av[i] * bv[i];
    *out_shape = {};
    return {s};
  }
  if (a1) sa = {1, sa[0]};
  if (b1) sb = {sb[0], 1};
  const int64_t M = ta ? sa.end()[-1] : sa.end()[-2], K = ta ? sa.end()[-2] : sa.end()[-1];
  const int64_t N = tb ? sb.end()[-2] : sb.end()[-1];
  const Shape ba(sa.begin(), sa.end() - 2), bb(sb.begin(), sb.end() - 2);
  const Shape batch = host_broadcast(ba, bb);
  const int64_t nb = shape_numel(batch);
  std::vector<double> out(static_cast<size_t>(nb * M * N), 0.0);
  for (int64_t bi = 0; bi < nb; ++bi) {
    const auto bidx = unravel(bi, batch);
    const int64_t oa = broadcast_flat(bidx, ba) * sa.end()[-2] * sa.end()[-1];
    const int64_t ob = broadcast_flat(bidx, bb) * sb.end()[-2] * sb.end()[-1];
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) {
          const double x = ta ? av[oa + k * M + m] : av[oa + m * K + k];
          const double y = tb ? bv[ob + n * K + k] : bv[ob + k * N + n];
          s += x * y;
        }
        out[(bi * M + m) * N + n] = s;
      }
  }
  Shape os = batch;
  if (!a1) os.push_back(M);
  if (!b1) os.push_back(N);
  *out_shape = os;
  return out;
}

void check_matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  Shape want_shape;
  const auto want = matmul_ref(a, b, ta, tb, &want_shape);
  Tensor y = matmul(a, b, ta, tb);
  REQUIRE(y.shape() == want_shape);
  require_close(y.to_vector<double>(), want, 1e-12, 1e-12);
  // f32 agrees with f64
  Tensor y32 = matmul(a.detach().to(DType::f32), b.detach().to(DType::f32), ta, tb);
  REQUIRE(y32.dtype() == DType::f32);
  require_close(y32.to_vector<double>(), want, 1e-5, 1e-5);
}

}  // namespace

TEST_CASE("matmul: 2-D with all transpose flags", "[ops]") {
  const int64_t M = 3, K = 4, N = 5;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      INFO("ta " << ta << " tb " << tb);
      Tensor a = leaf_in(ta ? Shape{K, M} : Shape{M, K}, 1, -1, 1);
      Tensor b = leaf_in(tb ? Shape{N, K} : Shape{K, N}, 2, -1, 1);
      check_matmul(a, b, ta, tb);
      REQUIRE_GRADCHECK([=](const std::vector<Tensor>& in) { return matmul(in[0], in[1], ta, tb); }, {a, b});
      // only one input requiring grad
      Tensor bc = b.detach();
      REQUIRE_GRADCHECK([=](const std::vector<Tensor>& in) { return matmul(in[0], bc, ta, tb); }, {a});
    }
  }
}

TEST_CASE("matmul: batched with broadcast batch dims", "[ops]") {
  struct Case { Shape a, b; bool ta, tb; };
  const std::vector<Case> cases = {
      {{2, 1, 3, 4}, {5, 4, 6}, false, false},
      {{2, 1, 4, 3}, {5, 4, 6}, true, false},
      {{2, 1, 3, 4}, {5, 6, 4}, false, true},
      {{2, 1, 4, 3}, {5, 6, 4}, true, true},
      {{3, 4}, {2, 4, 5}, false, false},     // 2-D a broadcast against a batch
      {{2, 3, 4}, {4, 5}, false, false},     // batched x 2-D weight (folded into one GEMM)
      {{2, 3, 4}, {5, 4}, false, true},      // batched x 2-D weight, transposed
      {{2, 4, 3}, {4, 5}, true, false},      // transposed batched a x 2-D
      {{2, 2, 3, 4}, {4, 5}, false, false},  // two batch dims x 2-D
      {{1, 3, 4}, {2, 4, 2}, false, false},
      {{4}, {2, 4, 3}, false, false},        // 1-D a against a batch
      {{2, 3, 4}, {4}, false, false},        // batch against 1-D b
      {{4}, {4}, false, false},              // dot product
      {{4}, {4, 3}, false, false},
      {{4}, {3, 4}, false, true},
      {{3, 4}, {4}, false, false},
      {{4, 3}, {4}, true, false},
  };
  for (const auto& c : cases) {
    INFO(shape_str(c.a) << (c.ta ? "^T" : "") << " x " << shape_str(c.b) << (c.tb ? "^T" : ""));
    Tensor a = leaf_in(c.a, 3, -1, 1), b = leaf_in(c.b, 4, -1, 1);
    check_matmul(a, b, c.ta, c.tb);
    REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return matmul(in[0], in[1], c.ta, c.tb); }, {a, b});
    // gradients arrive in each input's own shape
    a.zero_grad();
    b.zero_grad();
    sum(matmul(a, b, c.ta, c.tb)).backward();
    REQUIRE(a.grad().shape() == a.shape());
    REQUIRE(b.grad().shape() == b.shape());
  }
  // member sugar
  Tensor a = leaf_in({3, 4}, 5, -1, 1), b = leaf_in({4, 2}, 6, -1, 1);
  REQUIRE(max_abs_diff(a.matmul(b), matmul(a, b)) == 0.0);
}

TEST_CASE("matmul: non-contiguous operands without flags", "[ops]") {
  using Fn = std::function<Tensor(const Tensor&)>;
  struct Case { std::string name; Shape sa; Fn fa; Shape sb; Fn fb; };
  const Fn id = [](const Tensor& t) { return t; };
  const std::vector<Case> cases = {
      {"transposed a", {4, 3}, [](const Tensor& t) { return t.t(); }, {4, 5}, id},
      {"transposed b", {3, 4}, id, {5, 4}, [](const Tensor& t) { return t.t(); }},
      {"both transposed", {4, 3}, [](const Tensor& t) { return t.t(); }, {5, 4}, [](const Tensor& t) { return t.t(); }},
      {"column step 2", {3, 8}, [](const Tensor& t) { return t.slice(1, 0, 8, 2); }, {4, 5}, id},
      {"row step + offset", {3, 4}, id, {9, 5}, [](const Tensor& t) { return t.slice(0, 1, 9, 2); }},
      {"sliced inner dim of b", {3, 4}, id, {4, 11}, [](const Tensor& t) { return t.slice(1, 3, 8); }},
      {"expanded b (stride 0)", {3, 4}, id, {4, 1}, [](const Tensor& t) { return t.expand({4, 5}); }},
      {"permuted batch", {3, 2, 4, 5}, [](const Tensor& t) { return t.permute({1, 0, 2, 3}); }, {5, 6}, id},
      {"permuted batch x batch", {3, 2, 4, 5}, [](const Tensor& t) { return t.permute({1, 0, 2, 3}); },
       {2, 3, 6, 5}, [](const Tensor& t) { return t.transpose(-1, -2); }},
      {"batch transposed x 2-D", {2, 5, 4}, [](const Tensor& t) { return t.transpose(1, 2); }, {5, 3}, id},
      {"batch-dim slice", {4, 3, 5}, [](const Tensor& t) { return t.slice(0, 0, 4, 2); }, {2, 5, 3}, id},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    Tensor abase = leaf_in(c.sa, 7, -1, 1), bbase = leaf_in(c.sb, 8, -1, 1);
    Tensor a = c.fa(abase), b = c.fb(bbase);
    REQUIRE((!a.is_contiguous() || !b.is_contiguous()));
    check_matmul(a, b, false, false);
    REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return matmul(c.fa(in[0]), c.fb(in[1])); },
                      {abase, bbase});
  }
}

TEST_CASE("matmul: empty dims", "[ops]") {
  // K = 0 gives zeros; M = 0 or N = 0 gives an empty result; batched x 2-D with K = 0 too
  struct Case { Shape a, b, out; };
  const std::vector<Case> cases = {
      {{3, 0}, {0, 4}, {3, 4}}, {{0, 3}, {3, 4}, {0, 4}}, {{3, 2}, {2, 0}, {3, 0}},
      {{2, 3, 0}, {0, 4}, {2, 3, 4}}, {{2, 0, 3}, {3, 4}, {2, 0, 4}}, {{0, 3, 2}, {2, 4}, {0, 3, 4}},
  };
  for (const auto& c : cases) {
    INFO(shape_str(c.a) << " x " << shape_str(c.b));
    Tensor a = leaf_in(c.a, 1, -1, 1), b = leaf_in(c.b, 2, -1, 1);
    Tensor y = matmul(a, b);
    REQUIRE(y.shape() == c.out);
    REQUIRE(y.to_vector<double>() == std::vector<double>(static_cast<size_t>(shape_numel(c.out)), 0.0));
    sum(y).backward();
    REQUIRE(a.grad().shape() == c.a);
    REQUIRE(b.grad().shape() == c.b);
  }
}

TEST_CASE("matmul: errors name the op and both shapes", "[ops]") {
  REQUIRE_THROWS_WITH(matmul(zeros({4, 3}), zeros({5, 2})),
                      Catch::Contains("matmul") && Catch::Contains("(4, 3)") && Catch::Contains("(5, 2)"));
  REQUIRE_THROWS_WITH(matmul(zeros({2, 3, 4}), zeros({5, 6})),
                      Catch::Contains("matmul") && Catch::Contains("(2, 3, 4)") && Catch::Contains("(5, 6)"));
  // (3, 4)ᵀ x (4, 3): inner dims 3 and 4
  REQUIRE_THROWS_WITH(matmul(zeros({3, 4}), zeros({4, 3}), true, false),
                      Catch::Contains("matmul") && Catch::Contains("(3, 4)") && Catch::Contains("(4, 3)"));
  REQUIRE_NOTHROW(matmul(zeros({3, 4}), zeros({3, 4}), true, false));
  REQUIRE_THROWS_WITH(matmul(zeros({3, 4}), zeros({4, 5}), false, true),
                      Catch::Contains("matmul") && Catch::Contains("(4, 5)"));
  REQUIRE_THROWS_WITH(matmul(zeros({3}), zeros({4})),
                      Catch::Contains("matmul") && Catch::Contains("(3,)") && Catch::Contains("(4,)"));
  // a length-1 vector must not broadcast in a dot product
  REQUIRE_THROWS_WITH(matmul(zeros({1}), zeros({4})), Catch::Contains("matmul"));
  REQUIRE_THROWS_WITH(matmul(zeros({3}), zeros({4, 2})),
                      Catch::Contains("matmul") && Catch::Contains("(3,)") && Catch::Contains("(4, 2)"));
  REQUIRE_THROWS_WITH(matmul(zeros({2, 3, 4}), zeros({3, 4, 5})),
                      Catch::Contains("matmul") && Catch::Contains("(2, 3, 4)") && Catch::Contains("(3, 4, 5)"));
  REQUIRE_THROWS_WITH(matmul(zeros({2, 2}), zeros({2, 2}, DType::f64)),
                      Catch::Contains("matmul") && Catch::Contains("f64"));
  REQUIRE_THROWS_WITH(matmul(zeros({2, 2}, DType::i64), zeros({2, 2}, DType::i64)), Catch::Contains("matmul"));
  REQUIRE_THROWS_WITH(matmul(scalar_tensor(1.0), zeros({2})), Catch::Contains("matmul"));
}

TEST_CASE("linear: with and without bias", "[ops]") {
  Tensor x = leaf_in({2, 3, 4}, 11, -1, 1), w = leaf_in({5, 4}, 12, -1, 1), b = leaf_in({5}, 13, -1, 1);
  const auto xv = x.to_vector<double>(), wv = w.to_vector<double>(), bv = b.to_vector<double>();
  std::vector<double> want(2 * 3 * 5), want_nb(2 * 3 * 5);
  for (int r = 0; r < 6; ++r)
    for (int o = 0; o < 5; ++o) {
      double s = 0;
      for (int i = 0; i < 4; ++i) s += xv[r * 4 + i] * wv[o * 4 + i];
      want_nb[r * 5 + o] = s;
      want[r * 5 + o] = s + bv[o];
    }
  Tensor y = linear(x, w, b);
  REQUIRE(y.shape() == Shape{2, 3, 5});
  require_close(y.to_vector<double>(), want);
  require_close(linear(x, w).to_vector<double>(), want_nb);
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); }, {x, w, b});
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return linear(in[0], in[1]); }, {x, w});
  // 1-D input and a non-contiguous input
  Tensor v = leaf_in({4}, 14, -1, 1);
  REQUIRE(linear(v, w, b).shape() == Shape{5});
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); }, {v, w, b});
  Tensor xt = leaf_in({4, 3}, 15, -1, 1);
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return linear(in[0].t(), in[1], in[2]); }, {xt, w, b});

  REQUIRE_THROWS_WITH(linear(x, zeros({4}, DType::f64)), Catch::Contains("linear") && Catch::Contains("(4,)"));
  REQUIRE_THROWS_WITH(linear(x, zeros({5, 3}, DType::f64)),
                      Catch::Contains("linear") && Catch::Contains("(2, 3, 4)") && Catch::Contains("(5, 3)"));
  REQUIRE_THROWS_WITH(linear(x, w, zeros({4}, DType::f64)),
                      Catch::Contains("linear") && Catch::Contains("bias") && Catch::Contains("(4,)"));
}

// ---- the two CPU GEMM engines (kernels/cpu/linalg.cpp) and the bf16 matmul precision ---------------

namespace {

// Restores the thread count and the matmul precision when a test ends.
struct EngineScope {
  int threads = num_threads();
  MatmulPrecision precision = matmul_precision();
  ~EngineScope() {
    set_num_threads(threads);
    set_matmul_precision(precision);
  }
};

// f32 -> nearest bfloat16 (ties to even), back as a double: the rounding the bf16 GEMM applies.
double bf16_round(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  float r;
  std::memcpy(&r, &u, 4);
  return r;
}

Tensor rounded_bf16(const Tensor& t) {
  std::vector<double> v = t.to_vector<double>();
  for (double& x : v) x = bf16_round(static_cast<float>(x));
  return from_vector<double>(v, t.shape());
}

}  // namespace

TEST_CASE("matmul: f32 through the oneDNN engine matches f64 on every layout", "[ops]") {
  // The most threads allowed (8 or more with 2+ hardware threads): every problem here has at most
  // 6 batches, fewer than the threads, so each f32 GEMM goes to oneDNN (when built with it) instead
  // of the per-batch Eigen loop; views oneDNN declines fall back.
  EngineScope scope;
  set_num_threads(max_num_threads());
  using Fn = std::function<Tensor(const Tensor&)>;
  const Fn id = [](const Tensor& t) { return t; };
  struct Case { std::string name; Shape sa; Fn fa; bool ta; Shape sb; Fn fb; bool tb; };
  const std::vector<Case> cases = {
      {"plain", {33, 17}, id, false, {17, 29}, id, false},
      {"a^T", {17, 33}, id, true, {17, 29}, id, false},
      {"b^T", {33, 17}, id, false, {29, 17}, id, true},
      {"a^T b^T", {17, 33}, id, true, {29, 17}, id, true},
      {"column step 2", {9, 16}, [](const Tensor& t) { return t.slice(1, 0, 16, 2); }, false, {8, 5}, id, false},
      {"row step + offset", {9, 4}, [](const Tensor& t) { return t.slice(0, 1, 9, 2); }, false, {4, 6}, id, false},
      {"sliced inner dim", {3, 4}, id, false, {4, 11}, [](const Tensor& t) { return t.slice(1, 3, 8); }, false},
      {"one row", {1, 7}, id, false, {7, 3}, id, false},
      {"one column", {5, 7}, id, false, {7, 1}, id, false},
      {"row of a transposed matrix", {6, 7}, [](const Tensor& t) { return t.t().slice(0, 2, 3); }, false, {6, 3}, id,
       false},
      {"expanded b (stride 0)", {3, 4}, id, false, {4, 1}, [](const Tensor& t) { return t.expand({4, 5}); }, false},
      {"batched", {3, 4, 5}, id, false, {3, 5, 6}, id, false},
      {"batched, broadcast b", {2, 3, 4, 5}, id, false, {3, 6, 5}, id, true},
      {"permuted batch", {3, 2, 4, 5}, [](const Tensor& t) { return t.permute({1, 0, 2, 3}); }, false, {2, 3, 5, 2},
       id, false},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    Tensor a = c.fa(leaf_in(c.sa, 21, -1, 1).detach()), b = c.fb(leaf_in(c.sb, 22, -1, 1).detach());
    Shape want_shape;
    const auto want = matmul_ref(a, b, c.ta, c.tb, &want_shape);
    Tensor y = matmul(a.to(DType::f32), b.to(DType::f32), c.ta, c.tb);
    REQUIRE(y.shape() == want_shape);
    require_close(y.to_vector<double>(), want, 1e-5, 1e-5);
  }
}

TEST_CASE("matmul: bf16 precision rounds the operands to bfloat16 and sums in f32", "[ops]") {
  EngineScope scope;
  REQUIRE(parse_matmul_precision("bf16") == MatmulPrecision::bf16);
  REQUIRE(parse_matmul_precision("highest") == MatmulPrecision::highest);
  REQUIRE_THROWS_WITH(parse_matmul_precision("fp8"), Catch::Contains("fp8") && Catch::Contains("bf16"));
  if (!onednn_available() || !__builtin_cpu_supports("avx512bf16")) {
    WARN("skipped the bf16 GEMM checks: "
         << (onednn_available() ? "this CPU has no AVX512-BF16/AMX" : "this build has no oneDNN (KNOT_ONEDNN=OFF)"));
    return;
  }
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      INFO("ta " << ta << " tb " << tb);
      const int64_t M = 48, K = 200, N = 40;
      Tensor a = leaf_in(ta ? Shape{K, M} : Shape{M, K}, 31, -2, 2).detach().to(DType::f32);
      Tensor b = leaf_in(tb ? Shape{N, K} : Shape{K, N}, 32, -2, 2).detach().to(DType::f32);
      set_matmul_precision(MatmulPrecision::highest);
      const Tensor full = matmul(a, b, ta, tb);
      set_matmul_precision(MatmulPrecision::bf16);
      const Tensor half = matmul(a, b, ta, tb);
      // Exactly the product of the rounded operands, up to f32 summation error (|sum| <= K * 4).
      Shape s;
      const auto want = matmul_ref(rounded_bf16(a), rounded_bf16(b), ta, tb, &s);
      require_close(half.to_vector<double>(), want, 2e-4, 1e-5);
      // ... which is not the f32 product: the rounding really happened (relative error ~2^-9).
      const double d = max_abs_diff(half, full);
      REQUIRE(d > 1e-3);
      REQUIRE(d < 0.5);
      // f64 GEMMs never change precision
      const Tensor a64 = a.to(DType::f64), b64 = b.to(DType::f64);
      const auto exact = matmul_ref(a64, b64, ta, tb, &s);
      require_close(matmul(a64, b64, ta, tb).to_vector<double>(), exact, 1e-12, 1e-12);
    }
  }
  // a strided view and a batch go through the same rounding
  Tensor base = leaf_in({6, 40}, 33, -1, 1).detach().to(DType::f32);
  Tensor av = base.slice(1, 0, 40, 2);  // (6, 20), column stride 2
  Tensor bb = leaf_in({20, 7}, 34, -1, 1).detach().to(DType::f32);
  set_matmul_precision(MatmulPrecision::bf16);
  Shape s;
  require_close(matmul(av, bb).to_vector<double>(), matmul_ref(rounded_bf16(av), rounded_bf16(bb), false, false, &s),
                1e-5, 1e-5);
}

TEST_CASE("kernels::lstsq: least squares per problem, minimum-norm when underdetermined", "[linalg]") {
  // Problem 0: overdetermined (6 x 3), so the solution satisfies the normal equations AᵀA·x = Aᵀy.
  // Problem 1: 6 rows but only 2 independent columns' worth of data in column 3 (= col 1 + col 2):
  // rank-deficient, and the minimum-norm solution has no component along the null space (1, 1, −1).
  const int64_t F = 2, N = 6, K = 3, M = 2;
  std::vector<double> a(F * N * K), y(F * N * M);
  Generator gen(5);
  const std::vector<double> r = rand({F * N * K + F * N * M}, DType::f64, &gen, -1, 1).to_vector<double>();
  for (size_t i = 0; i < a.size(); ++i) a[i] = r[i];
  for (size_t i = 0; i < y.size(); ++i) y[i] = r[a.size() + i];
  for (int64_t n = 0; n < N; ++n) a[(N + n) * K + 2] = a[(N + n) * K + 0] + a[(N + n) * K + 1];
  const Tensor x = kernels::lstsq(from_vector(a, {F, N, K}), from_vector(y, {F, N, M}));
  REQUIRE(x.shape() == Shape{F, K, M});
  const std::vector<double> xv = x.to_vector<double>();
  for (int64_t f = 0; f < F; ++f)
    for (int64_t m = 0; m < M; ++m) {
      // Normal equations: Aᵀ(A·x − y) = 0 (also at a least-squares solution of a rank-deficient A).
      for (int64_t k = 0; k < K; ++k) {
        double g = 0;
        for (int64_t n = 0; n < N; ++n) {
          double res = -y[(f * N + n) * M + m];
          for (int64_t j = 0; j < K; ++j) res += a[(f * N + n) * K + j] * xv[(f * K + j) * M + m];
          g += a[(f * N + n) * K + k] * res;
        }
        REQUIRE(std::abs(g) < 1e-10);
      }
    }
  for (int64_t m = 0; m < M; ++m)  // problem 1: orthogonal to the null space (1, 1, −1)
    REQUIRE(std::abs(xv[(K + 0) * M + m] + xv[(K + 1) * M + m] - xv[(K + 2) * M + m]) < 1e-10);
  REQUIRE_THROWS_WITH(kernels::lstsq(from_vector(a, {F, N, K}).to(DType::f32), from_vector(y, {F, N, M})),
                      Catch::Contains("lstsq: a must be a contiguous 3-D f64 tensor on the host"));
  REQUIRE_THROWS_WITH(kernels::lstsq(from_vector(a, {F, N, K}), zeros({F, N - 1, M}, DType::f64)),
                      Catch::Contains("does not match"));
}
