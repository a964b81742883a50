// Fused nn ops: softmax, log_softmax, layer_norm, cross_entropy (with ignore_index and label
// smoothing), and mse_loss. Each: forward vs a naive loop reference, f64 gradcheck of every
// differentiable input, non-contiguous inputs and negative dims, f32 close to f64, fused ==
// composite (values and gradients), and errors naming the op.
#include <limits>

#include "tests/helpers.h"

using namespace knot;
using knot::test::all_close;
using knot::test::max_abs_diff;
using knot::test::rand_leaf;

namespace {

// Applies row_fn(row) -> row to every row along `dim` of a row-major value list.
template <typename F>
std::vector<double> ref_map_dim(const std::vector<double>& v, const Shape& s, int dim, F row_fn) {
  int64_t outer = 1, n = s[dim], inner = 1;
  for (int d = 0; d < dim; ++d) outer *= s[d];
  for (size_t d = dim + 1; d < s.size(); ++d) inner *= s[d];
  std::vector<double> out(v.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      std::vector<double> row;
      for (int64_t j = 0; j < n; ++j) row.push_back(v[(o * n + j) * inner + i]);
      const std::vector<double> r = row_fn(row);
      for (int64_t j = 0; j < n; ++j) out[(o * n + j) * inner + i] = r[j];
    }
  return out;
}

std::vector<double> ref_softmax_row(const std::vector<double>& row, bool log_space) {
  double m = -std::numeric_limits<double>::infinity();
  for (double x : row) m = std::max(m, x);
  double s = 0;
  for (double x : row) s += std::exp(x - m);
  std::vector<double> out;
  for (double x : row) out.push_back(log_space ? x - m - std::log(s) : std::exp(x - m) / s);
  return out;
}

void require_values(const Tensor& t, const std::vector<double>& want, double tol = 1e-12) {
  const auto got = t.to_vector<double>();
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) REQUIRE(got[i] == Approx(want[i]).margin(tol).epsilon(tol));
}

// Gradient of Σ w ⊙ f(x) with respect to each input, for comparing two implementations.
std::vector<Tensor> grads_of(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& in,
                             const Tensor& w) {
  for (const auto& t : in) t.zero_grad();
  sum(mul(f(in), w)).backward();
  std::vector<Tensor> g;
  for (const auto& t : in) g.push_back(t.grad());
  return g;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// softmax / log_softmax

TEST_CASE("softmax/log_softmax: match the reference along every dim", "[ops]") {
  Tensor x = rand_leaf({3, 4, 5}, 21, -3, 3);
  const auto v = x.to_vector<double>();
  for (bool log_space : {false, true}) {
    for (int d = 0; d < 3; ++d) {
      const auto want = ref_map_dim(v, {3, 4, 5}, d, [&](auto& r) { return ref_softmax_row(r, log_space); });
      require_values(log_space ? log_softmax(x, d) : softmax(x, d), want);
      require_values(log_space ? log_softmax(x, d - 3) : softmax(x, d - 3), want);
    }
  }
  REQUIRE(softmax(x, 1).shape() == Shape{3, 4, 5});
}

TEST_CASE("softmax/log_softmax: non-contiguous inputs", "[ops]") {
  Tensor x = rand_leaf({4, 6}, 22, -2, 2);
  for (const Tensor& v : {x.t(), x.slice(1, 0, 6, 2), x.slice(0, 1, 4).t()}) {
    const auto vals = v.contiguous().to_vector<double>();
    for (int d = 0; d < 2; ++d) {
      require_values(softmax(v, d), ref_map_dim(vals, v.shape(), d, [](auto& r) { return ref_softmax_row(r, false); }));
      require_values(log_softmax(v, d - 2), ref_map_dim(vals, v.shape(), d, [](auto& r) { return ref_softmax_row(r, true); }));
    }
  }
}

TEST_CASE("softmax/log_softmax: stable for large inputs, f32 close to f64", "[ops]") {
  Tensor big = from_values({1000, 1001, 999, -1000}, {1, 4}, DType::f32);
  const auto want = ref_softmax_row({1000, 1001, 999, -1000}, false);
  require_values(softmax(big, -1), want, 1e-6);
  const auto lwant = ref_softmax_row({1000, 1001, 999, -1000}, true);
  require_values(log_softmax(big, -1), lwant, 1e-4);
  Tensor x = rand_leaf({5, 7}, 23, -4, 4);
  REQUIRE(max_abs_diff(softmax(x.to(DType::f32), 0).to(DType::f64), softmax(x, 0)) < 1e-6);
  REQUIRE(max_abs_diff(log_softmax(x.to(DType::f32), 1).to(DType::f64), log_softmax(x, 1)) < 1e-5);
}

TEST_CASE("softmax/log_softmax: gradcheck on every dim, strided", "[ops]") {
  Tensor x = rand_leaf({3, 4, 5}, 24, -2, 2);
  for (int d : {0, 1, -1}) {
    REQUIRE_GRADCHECK([d](const std::vector<Tensor>& in) { return softmax(in[0], d); }, {x});
    REQUIRE_GRADCHECK([d](const std::vector<Tensor>& in) { return log_softmax(in[0], d); }, {x});
  }
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return softmax(in[0].transpose(0, 2), 1); }, {x});
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return log_softmax(in[0].slice(2, 0, 5, 2), -1); }, {x});
}

TEST_CASE("softmax/log_softmax: fused == composite, values and gradients", "[ops]") {
  Tensor x = rand_leaf({4, 3, 6}, 25, -3, 3);
  Tensor w = rand_leaf({4, 3, 6}, 26).detach();
  for (int d : {0, -1}) {
    auto fused_sm = [d](const std::vector<Tensor>& in) { return softmax(in[0], d); };
    auto comp_sm = [d](const std::vector<Tensor>& in) {
      Tensor e = exp(in[0]);
      return div(e, sum(e, {d}, true));
    };
    REQUIRE(all_close(fused_sm({x}), comp_sm({x}), 1e-12));
    REQUIRE(all_close(grads_of(fused_sm, {x}, w)[0], grads_of(comp_sm, {x}, w)[0], 1e-12));

    auto fused_lsm = [d](const std::vector<Tensor>& in) { return log_softmax(in[0], d); };
    auto comp_lsm = [d](const std::vector<Tensor>& in) { return sub(in[0], logsumexp(in[0], d, true)); };
    REQUIRE(all_close(fused_lsm({x}), comp_lsm({x}), 1e-12));
    REQUIRE(all_close(grads_of(fused_lsm, {x}, w)[0], grads_of(comp_lsm, {x}, w)[0], 1e-12));
  }
}

TEST_CASE("softmax/log_softmax: errors name the op", "[ops]") {
  REQUIRE_THROWS_WITH(softmax(zeros({4, 5}), 3), Catch::Contains("softmax: dim 3 out of range"));
  REQUIRE_THROWS_WITH(log_softmax(zeros({4, 5}), -3), Catch::Contains("log_softmax: dim -3 out of range"));
  REQUIRE_THROWS_WITH(softmax(from_values({1, 2}, {2}, DType::i64), 0),
                      Catch::Contains("softmax") && Catch::Contains("float"));
}

// ---------------------------------------------------------------------------------------------
// layer_norm

namespace {

// Naive layer norm over the last n elements of each row; w/b empty = no affine.
std::vector<double> ref_layer_norm(const std::vector<double>& x, int64_t n, const std::vector<double>& w,
                                   const std::vector<double>& b, double eps) {
  std::vector<double> out(x.size());
  for (size_t r = 0; r * n < x.size(); ++r) {
    double m = 0, v = 0;
    for (int64_t j = 0; j < n; ++j) m += x[r * n + j];
    m /= n;
    for (int64_t j = 0; j < n; ++j) v += (x[r * n + j] - m) * (x[r * n + j] - m);
    v /= n;
    for (int64_t j = 0; j < n; ++j) {
      double y = (x[r * n + j] - m) / std::sqrt(v + eps);
      if (!w.empty()) y *= w[j];
      if (!b.empty()) y += b[j];
      out[r * n + j] = y;
    }
  }
  return out;
}

Tensor layer_norm_composite(const Tensor& x, const Tensor& w, const Tensor& b, double eps, int k) {
  std::vector<int64_t> dims;
  for (int i = 1; i <= k; ++i) dims.push_back(-i);
  Tensor y = div(sub(x, mean(x, dims, true)), sqrt(add(var(x, dims, false, true), eps)));
  if (w.defined()) y = mul(y, w);
  if (b.defined()) y = add(y, b);
  return y;
}

}  // namespace

TEST_CASE("layer_norm: matches the reference, with and without affine", "[ops]") {
  Tensor x = rand_leaf({2, 3, 8}, 31, -2, 3);
  Tensor w = rand_leaf({8}, 32), b = rand_leaf({8}, 33);
  const auto xv = x.to_vector<double>(), wv = w.to_vector<double>(), bv = b.to_vector<double>();
  require_values(layer_norm(x, w, b, 1e-5), ref_layer_norm(xv, 8, wv, bv, 1e-5));
  require_values(layer_norm(x, w, Tensor(), 1e-3), ref_layer_norm(xv, 8, wv, {}, 1e-3));
  require_values(layer_norm(x, Tensor(), Tensor(), 1e-5, {8}), ref_layer_norm(xv, 8, {}, {}, 1e-5));
  // Two normalised dims: weight (3, 8) normalises over the last 24 elements.
  Tensor w2 = rand_leaf({3, 8}, 34), b2 = rand_leaf({3, 8}, 35);
  require_values(layer_norm(x, w2, b2), ref_layer_norm(xv, 24, w2.to_vector<double>(), b2.to_vector<double>(), 1e-5));
  require_values(layer_norm(x, Tensor(), Tensor(), 1e-5, {3, 8}), ref_layer_norm(xv, 24, {}, {}, 1e-5));
}

TEST_CASE("layer_norm: non-contiguous input, f32 close to f64", "[ops]") {
  Tensor x = rand_leaf({6, 4}, 36);
  Tensor xt = x.t();  // (4, 6)
  Tensor w = rand_leaf({6}, 37), b = rand_leaf({6}, 38);
  require_values(layer_norm(xt, w, b),
                 ref_layer_norm(xt.contiguous().to_vector<double>(), 6, w.to_vector<double>(), b.to_vector<double>(), 1e-5));
  Tensor f32 = layer_norm(xt.to(DType::f32), w.to(DType::f32), b.to(DType::f32));
  REQUIRE(f32.dtype() == DType::f32);
  REQUIRE(max_abs_diff(f32.to(DType::f64), layer_norm(xt, w, b)) < 1e-5);
  // A large common offset: the two-pass statistics keep f32 accurate.
  Tensor shifted = add(x.t(), 1000.0);
  REQUIRE(max_abs_diff(layer_norm(shifted.to(DType::f32), Tensor(), Tensor(), 1e-5, {6}).to(DType::f64),
                       layer_norm(shifted, Tensor(), Tensor(), 1e-5, {6})) < 1e-3);
}

TEST_CASE("layer_norm: gradcheck of x, weight and bias", "[ops]") {
  Tensor x = rand_leaf({3, 2, 5}, 39, -2, 2);
  Tensor w = rand_leaf({5}, 40, 0.5, 1.5), b = rand_leaf({5}, 41);
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], in[2], 1e-5); }, {x, w, b});
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], Tensor(), 1e-2); }, {x, w});
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return layer_norm(in[0], Tensor(), Tensor(), 1e-5, {2, 5}); },
                    {x});
  Tensor w2 = rand_leaf({2, 5}, 42, 0.5, 1.5), b2 = rand_leaf({2, 5}, 43);
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], in[2]); }, {x, w2, b2});
  // Strided x: normalise over the transposed view's last dim.
  Tensor w3 = rand_leaf({3}, 44, 0.5, 1.5), b3 = rand_leaf({3}, 45);
  REQUIRE_GRADCHECK(
      [](const std::vector<Tensor>& in) { return layer_norm(in[0].transpose(0, 2), in[1], in[2]); }, {x, w3, b3});
}

TEST_CASE("layer_norm: only the inputs that need it get a gradient", "[ops]") {
  Tensor x = rand_leaf({4, 5}, 46);
  Tensor w = rand_leaf({5}, 47).detach(), b = rand_leaf({5}, 48);
  sum(layer_norm(x, w, b)).backward();
  REQUIRE(x.grad().defined());
  REQUIRE_FALSE(w.grad().defined());
  // d/db Σ y = number of rows, per column.
  require_values(b.grad(), {4, 4, 4, 4, 4});
  // Σ_j dy_j/dx_j... the row sum of dx for a plain sum loss is zero (mean is subtracted).
  const auto gx = x.grad().to_vector<double>();
  for (int r = 0; r < 4; ++r) {
    double s = 0;
    for (int j = 0; j < 5; ++j) s += gx[r * 5 + j];
    REQUIRE(s == Approx(0.0).margin(1e-12));
  }
}

TEST_CASE("layer_norm: fused == mean/var composite, values and gradients", "[ops]") {
  Tensor x = rand_leaf({3, 4, 6}, 49, -2, 2);
  Tensor w = rand_leaf({4, 6}, 50), b = rand_leaf({4, 6}, 51);
  Tensor gw = rand_leaf({3, 4, 6}, 52).detach();
  auto fused = [](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], in[2], 1e-4); };
  auto comp = [](const std::vector<Tensor>& in) { return layer_norm_composite(in[0], in[1], in[2], 1e-4, 2); };
  REQUIRE(all_close(fused({x, w, b}), comp({x, w, b}), 1e-12));
  const auto gf = grads_of(fused, {x, w, b}, gw), gc = grads_of(comp, {x, w, b}, gw);
  for (int i = 0; i < 3; ++i) REQUIRE(all_close(gf[i], gc[i], 1e-10));
}

TEST_CASE("layer_norm: errors name the op and shapes", "[ops]") {
  Tensor x = zeros({2, 3, 4});
  REQUIRE_THROWS_WITH(layer_norm(x, ones({3}), Tensor()),
                      Catch::Contains("layer_norm") && Catch::Contains("(3,)") && Catch::Contains("(2, 3, 4)"));
  REQUIRE_THROWS_WITH(layer_norm(x, Tensor(), Tensor()), Catch::Contains("layer_norm") && Catch::Contains("normalized_shape"));
  REQUIRE_THROWS_WITH(layer_norm(x, ones({4}), ones({3})), Catch::Contains("layer_norm: bias shape (3,)"));
  REQUIRE_THROWS_WITH(layer_norm(x, ones({4}), Tensor(), 1e-5, {3, 4}), Catch::Contains("layer_norm") && Catch::Contains("differs"));
  REQUIRE_THROWS_WITH(layer_norm(x, ones({4}, DType::f64), Tensor()), Catch::Contains("layer_norm: weight"));
  REQUIRE_THROWS_WITH(layer_norm(zeros({2, 4}, DType::i32), Tensor(), Tensor(), 1e-5, {4}),
                      Catch::Contains("layer_norm") && Catch::Contains("float"));
}

// ---------------------------------------------------------------------------------------------
// cross_entropy

namespace {

// Naive per-row losses: (1−ε)·(−logp_t) + ε·mean_c(−logp_c); NaN marks ignored rows.
std::vector<double> ref_ce_rows(const std::vector<double>& logits, const std::vector<int64_t>& t, int64_t c,
                                int64_t ignore_index, double eps) {
  std::vector<double> out;
  for (size_t r = 0; r < t.size(); ++r) {
    if (t[r] == ignore_index) {
      out.push_back(std::numeric_limits<double>::quiet_NaN());
      continue;
    }
    std::vector<double> row(logits.begin() + r * c, logits.begin() + (r + 1) * c);
    const auto lp = ref_softmax_row(row, true);
    double smooth = 0;
    for (double v : lp) smooth -= v;
    out.push_back((1 - eps) * -lp[t[r]] + eps * smooth / c);
  }
  return out;
}

double ref_ce(const std::vector<double>& rows, Reduction red) {
  double s = 0;
  int n = 0;
  for (double v : rows)
    if (!std::isnan(v)) s += v, ++n;
  return red == Reduction::sum ? s : s / n;
}

// −Σ log_softmax ⊙ q / count with the smoothed one-hot q built in the test (zero rows where ignored).
Tensor cross_entropy_composite(const Tensor& logits, const std::vector<int64_t>& t, int64_t ignore_index, double eps) {
  const int64_t c = logits.shape().back();
  std::vector<double> q(t.size() * c, 0.0);
  int count = 0;
  for (size_t r = 0; r < t.size(); ++r) {
    if (t[r] == ignore_index) continue;
    ++count;
    for (int64_t k = 0; k < c; ++k) q[r * c + k] = eps / c + (k == t[r] ? 1 - eps : 0.0);
  }
  Tensor qt = from_vector(q, logits.shape());
  return mul(sum(mul(log_softmax(logits, -1), qt)), -1.0 / count);
}

}  // namespace

TEST_CASE("cross_entropy: matches the reference for every reduction, ignore_index, smoothing", "[ops]") {
  Tensor x = rand_leaf({6, 5}, 61, -3, 3);
  const std::vector<int64_t> t = {0, 4, -100, 2, 2, 1};
  Tensor tt = from_vector(t, {6});
  const auto xv = x.to_vector<double>();
  for (double eps : {0.0, 0.1}) {
    const auto rows = ref_ce_rows(xv, t, 5, -100, eps);
    REQUIRE(cross_entropy(x, tt, -100, eps).item() == Approx(ref_ce(rows, Reduction::mean)).epsilon(1e-12));
    REQUIRE(cross_entropy(x, tt, -100, eps, Reduction::sum).item() == Approx(ref_ce(rows, Reduction::sum)).epsilon(1e-12));
    Tensor none = cross_entropy(x, tt, -100, eps, Reduction::none);
    REQUIRE(none.shape() == Shape{6});
    const auto nv = none.to_vector<double>();
    for (size_t r = 0; r < rows.size(); ++r) REQUIRE(nv[r] == Approx(std::isnan(rows[r]) ? 0.0 : rows[r]).epsilon(1e-12));
  }
  // A different ignore_index, which also makes -100 a bad target.
  std::vector<int64_t> t2 = {0, 4, 3, 2, 2, 1};
  Tensor tt2 = from_vector(t2, {6});
  const auto rows2 = ref_ce_rows(xv, t2, 5, 2, 0.0);
  REQUIRE(cross_entropy(x, tt2, 2).item() == Approx(ref_ce(rows2, Reduction::mean)).epsilon(1e-12));
}

TEST_CASE("cross_entropy: (..., C) logits, i32 targets, strided logits, f32", "[ops]") {
  Tensor x = rand_leaf({2, 3, 4}, 62, -2, 2);
  const std::vector<int32_t> t32 = {3, 0, 1, 2, 2, 0};
  Tensor tt = from_vector(t32, {2, 3});
  const std::vector<int64_t> t(t32.begin(), t32.end());
  const auto rows = ref_ce_rows(x.to_vector<double>(), t, 4, -100, 0.2);
  REQUIRE(cross_entropy(x, tt, -100, 0.2).item() == Approx(ref_ce(rows, Reduction::mean)).epsilon(1e-12));
  REQUIRE(cross_entropy(x, tt, -100, 0.2, Reduction::none).shape() == Shape{2, 3});
  // Logits given as the transpose of a (C, N) tensor.
  Tensor xc = rand_leaf({4, 6}, 63, -2, 2);
  Tensor logits = xc.t();  // (6, 4), non-contiguous
  Tensor tt6 = from_vector<int64_t>({0, 1, 2, 3, 0, 1}, {6});
  const auto rows6 = ref_ce_rows(logits.contiguous().to_vector<double>(), {0, 1, 2, 3, 0, 1}, 4, -100, 0.0);
  REQUIRE(cross_entropy(logits, tt6).item() == Approx(ref_ce(rows6, Reduction::mean)).epsilon(1e-12));
  REQUIRE(cross_entropy(logits.to(DType::f32), tt6).item() == Approx(ref_ce(rows6, Reduction::mean)).epsilon(1e-6));
  // Large logits do not overflow.
  Tensor big = from_values({1000, 0, -1000, 999}, {1, 4}, DType::f32);
  Tensor tb = from_vector<int64_t>({3}, {1});
  REQUIRE(cross_entropy(big, tb).item() == Approx(std::log1p(std::exp(1.0)) - 0.0).epsilon(1e-5));
}

TEST_CASE("cross_entropy: gradcheck for each reduction, ignore_index and smoothing", "[ops]") {
  Tensor x = rand_leaf({5, 4}, 64, -2, 2);
  Tensor tt = from_vector<int64_t>({1, -100, 3, 0, 3}, {5});
  for (Reduction red : {Reduction::mean, Reduction::sum, Reduction::none})
    for (double eps : {0.0, 0.3})
      REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], tt, -100, eps, red); }, {x});
  // (..., C) logits taken as every other class of a wider tensor (strided last dim).
  Tensor x3 = rand_leaf({2, 4, 6}, 65, -2, 2);
  Tensor t3 = from_vector<int32_t>({0, 2, 7, 1, 1, 7, 0, 2}, {2, 4});
  REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return cross_entropy(in[0].slice(2, 0, 6, 2), t3, 7, 0.1); },
                    {x3});
  Tensor xc = rand_leaf({4, 6}, 66, -2, 2);
  Tensor t6 = from_vector<int64_t>({0, 1, 2, 3, 0, 1}, {6});
  REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return cross_entropy(in[0].t(), t6, -100, 0.05); }, {xc});
}

TEST_CASE("cross_entropy: fused == one-hot composite, values and gradients", "[ops]") {
  Tensor x = rand_leaf({7, 5}, 67, -3, 3);
  const std::vector<int64_t> t = {4, -1, 0, 0, 3, -1, 2};
  Tensor tt = from_vector(t, {7});
  for (double eps : {0.0, 0.15}) {
    auto fused = [&](const std::vector<Tensor>& in) { return cross_entropy(in[0], tt, -1, eps); };
    auto comp = [&](const std::vector<Tensor>& in) { return cross_entropy_composite(in[0], t, -1, eps); };
    REQUIRE(fused({x}).item() == Approx(comp({x}).item()).epsilon(1e-12));
    Tensor one = scalar_tensor(1.0, DType::f64);
    REQUIRE(all_close(grads_of(fused, {x}, one)[0], grads_of(comp, {x}, one)[0], 1e-12));
    // Ignored rows get exactly zero gradient.
    const auto g = x.grad().to_vector<double>();
    for (int k = 0; k < 5; ++k) REQUIRE(g[1 * 5 + k] == 0.0);
  }
}

TEST_CASE("cross_entropy: all targets ignored gives NaN mean and zero gradient", "[ops]") {
  Tensor x = rand_leaf({2, 3}, 68);
  Tensor tt = from_vector<int64_t>({-100, -100}, {2});
  Tensor loss = cross_entropy(x, tt);
  REQUIRE(std::isnan(loss.item()));
  REQUIRE(cross_entropy(x, tt, -100, 0.0, Reduction::sum).item() == 0.0);
  loss.backward();
  for (double g : x.grad().to_vector<double>()) REQUIRE(g == 0.0);
}

TEST_CASE("cross_entropy: bad inputs give errors naming the op and the value", "[ops]") {
  Tensor x = zeros({3, 4});
  REQUIRE_THROWS_WITH(cross_entropy(x, from_vector<int64_t>({0, 4, 1}, {3})),
                      Catch::Contains("cross_entropy: target 4") && Catch::Contains("4 classes"));
  REQUIRE_THROWS_WITH(cross_entropy(x, from_vector<int32_t>({0, -1, 1}, {3})), Catch::Contains("cross_entropy: target -1"));
  REQUIRE_THROWS_WITH(cross_entropy(x, from_vector<int64_t>({0, 1}, {2})),
                      Catch::Contains("cross_entropy") && Catch::Contains("(2,)") && Catch::Contains("(3, 4)"));
  REQUIRE_THROWS_WITH(cross_entropy(x, zeros({3})), Catch::Contains("cross_entropy: target must be i32 or i64"));
  REQUIRE_THROWS_WITH(cross_entropy(x, from_vector<int64_t>({0, 1, 2}, {3}), -100, 1.5),
                      Catch::Contains("cross_entropy: label_smoothing"));
  REQUIRE_THROWS_WITH(cross_entropy(from_values({1, 2}, {1, 2}, DType::i64), from_vector<int64_t>({0}, {1})),
                      Catch::Contains("cross_entropy: logits must be float"));
}

// ---------------------------------------------------------------------------------------------
// mse_loss

TEST_CASE("mse_loss: reference, reductions, gradcheck of both inputs", "[ops]") {
  Tensor a = rand_leaf({3, 4}, 71), b = rand_leaf({3, 4}, 72);
  const auto av = a.to_vector<double>(), bv = b.to_vector<double>();
  double s = 0;
  for (size_t i = 0; i < av.size(); ++i) s += (av[i] - bv[i]) * (av[i] - bv[i]);
  REQUIRE(mse_loss(a, b).item() == Approx(s / 12).epsilon(1e-12));
  REQUIRE(mse_loss(a, b, Reduction::sum).item() == Approx(s).epsilon(1e-12));
  Tensor none = mse_loss(a, b, Reduction::none);
  REQUIRE(none.shape() == Shape{3, 4});
  REQUIRE(none.to_vector<double>()[5] == Approx((av[5] - bv[5]) * (av[5] - bv[5])).epsilon(1e-12));
  for (Reduction red : {Reduction::mean, Reduction::sum, Reduction::none})
    REQUIRE_GRADCHECK([red](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1], red); }, {a, b});
  // Strided operands.
  Tensor c = rand_leaf({4, 3}, 73);
  REQUIRE(mse_loss(a, c.t()).item() == Approx(mse_loss(a, c.t().contiguous()).item()).epsilon(1e-14));
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1].t()); }, {a, c});
  REQUIRE(mse_loss(a.to(DType::f32), b.to(DType::f32)).item() == Approx(s / 12).epsilon(1e-6));
}

TEST_CASE("mse_loss: errors name the op and shapes", "[ops]") {
  REQUIRE_THROWS_WITH(mse_loss(zeros({2, 3}), zeros({3, 2})),
                      Catch::Contains("mse_loss") && Catch::Contains("(2, 3)") && Catch::Contains("(3, 2)"));
  REQUIRE_THROWS_WITH(mse_loss(zeros({2}), zeros({2}, DType::f64)), Catch::Contains("mse_loss"));
}

TEST_CASE("nn ops: large inputs take the threaded path and match the composites", "[ops]") {
  // Above kParallelGrain elements, so rows (and layer_norm's weight columns) are split across threads.
  Tensor x = rand_leaf({2048, 40}, 81, -3, 3);
  Tensor w = rand_leaf({2048, 40}, 82).detach();
  for (int d : {0, 1}) {
    auto fused = [d](const std::vector<Tensor>& in) { return softmax(in[0], d); };
    auto comp = [d](const std::vector<Tensor>& in) {
      Tensor e = exp(in[0]);
      return div(e, sum(e, {d}, true));
    };
    REQUIRE(all_close(fused({x}), comp({x}), 1e-12));
    REQUIRE(all_close(grads_of(fused, {x}, w)[0], grads_of(comp, {x}, w)[0], 1e-12));
  }
  Tensor lw = rand_leaf({40}, 83), lb = rand_leaf({40}, 84);
  auto ln = [](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], in[2]); };
  auto ln_comp = [](const std::vector<Tensor>& in) { return layer_norm_composite(in[0], in[1], in[2], 1e-5, 1); };
  REQUIRE(all_close(ln({x, lw, lb}), ln_comp({x, lw, lb}), 1e-11));
  const auto gf = grads_of(ln, {x, lw, lb}, w), gc = grads_of(ln_comp, {x, lw, lb}, w);
  for (int i = 0; i < 3; ++i) REQUIRE(all_close(gf[i], gc[i], 1e-9, 1e-9));

  std::vector<int64_t> t(2048);
  for (size_t i = 0; i < t.size(); ++i) t[i] = i % 7 == 3 ? -100 : static_cast<int64_t>((i * 13) % 40);
  Tensor tt = from_vector(t, {2048});
  auto ce = [&](const std::vector<Tensor>& in) { return cross_entropy(in[0], tt, -100, 0.1); };
  auto ce_comp = [&](const std::vector<Tensor>& in) { return cross_entropy_composite(in[0], t, -100, 0.1); };
  REQUIRE(ce({x}).item() == Approx(ce_comp({x}).item()).epsilon(1e-12));
  Tensor one = scalar_tensor(1.0, DType::f64);
  REQUIRE(all_close(grads_of(ce, {x}, one)[0], grads_of(ce_comp, {x}, one)[0], 1e-14, 1e-9));
}

TEST_CASE("cross_entropy: the vectorised f32 rows agree with f64, and ±inf/NaN rows keep their meaning", "[ops]") {
  // f32 rows with finite logits take row_math.h's path (Eigen exp, lane sums); compare them with the
  // f64 kernel on vocabulary-sized rows and on a row length that leaves a vector tail.
  for (int64_t C : {int64_t{5000}, int64_t{37}}) {
    const int64_t R = 9;
    Tensor x = rand_leaf({R, C}, 91 + C, -8, 8);
    std::vector<int64_t> t(R);
    for (int64_t r = 0; r < R; ++r) t[r] = r == 4 ? -100 : (r * 997) % C;
    Tensor tt = from_vector(t, {R});
    Tensor xf = x.detach().to(DType::f32);
    xf.requires_grad_();
    Generator gw(90);
    const Tensor w = rand({R}, DType::f64, &gw, 0.5, 1.5);
    for (double eps : {0.0, 0.1}) {
      const Tensor l64 = cross_entropy(x, tt, -100, eps, Reduction::none);
      const Tensor l32 = cross_entropy(xf, tt, -100, eps, Reduction::none);
      REQUIRE(l32.dtype() == DType::f32);
      REQUIRE(all_close(l32.to(DType::f64), l64, 1e-5, 1e-5));
      REQUIRE(l32.to_vector<double>()[4] == 0.0);  // the ignored row
      x.zero_grad();
      xf.zero_grad();
      sum(mul(l64, w)).backward();
      sum(mul(l32, w.to(DType::f32))).backward();
      REQUIRE(all_close(xf.grad().to(DType::f64), x.grad(), 1e-6, 1e-5));
      for (double v : xf.grad().select(0, 4).to_vector<double>()) REQUIRE(v == 0.0);
    }
  }
  // Rows with +inf, -inf and NaN logits: the f32 kernel gives what the f64 one gives.
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> v = {0.5, inf, -1.0, 2.0,  // +inf: lse = inf
                                 0.5, -inf, -1.0, 2.0,  // -inf (a masked class): a finite loss without smoothing
                                 0.5, nan, -1.0, 2.0};  // NaN poisons the row
  const Tensor s64 = from_vector(v, {3, 4});
  const Tensor tgt = from_vector<int64_t>({0, 2, 3}, {3});
  const auto a = cross_entropy(s64, tgt, -100, 0.0, Reduction::none).to_vector<double>();
  const auto b = cross_entropy(s64.to(DType::f32), tgt, -100, 0.0, Reduction::none).to_vector<double>();
  for (int r = 0; r < 3; ++r) {
    INFO("row " << r << ": f64 " << a[r] << ", f32 " << b[r]);
    REQUIRE(std::isnan(a[r]) == std::isnan(b[r]));
    REQUIRE(std::isinf(a[r]) == std::isinf(b[r]));
  }
  REQUIRE(std::isfinite(b[1]));
  REQUIRE(b[1] == Approx(a[1]).epsilon(1e-6));
  REQUIRE(a[1] == Approx(std::log(std::exp(0.5) + std::exp(-1.0) + std::exp(2.0)) + 1.0).epsilon(1e-12));
}

TEST_CASE("bce_with_logits: by hand, no overflow, no weight gives 0, float64 gradient", "[ops]") {
  using knot::Tensor;
  const Tensor x = knot::from_vector(std::vector<double>{2.0, -1.0, 0.5, 3.0, -30.0, 40.0}, {2, 3});
  const Tensor y = knot::from_vector(std::vector<double>{1, 0, 1, 0, 0, 1}, {2, 3});
  const Tensor w = knot::from_vector(std::vector<double>{1, 1, 1, 0, 1, 1}, {2, 3});
  // −[y log σ(x) + (1−y) log(1−σ(x))]: log(1+e^-2), log(1+e^-1), log(1+e^-0.5), log(1+e^-30), log(1+e^-40)
  const double expected = (std::log1p(std::exp(-2.0)) + std::log1p(std::exp(-1.0)) + std::log1p(std::exp(-0.5)) +
                           std::log1p(std::exp(-30.0)) + std::log1p(std::exp(-40.0))) /
                          5.0;
  REQUIRE(knot::bce_with_logits(x, y, w).item() == Approx(expected).epsilon(1e-12));
  REQUIRE(std::isfinite(knot::bce_with_logits(knot::mul(x, 100.0), y, w).item()));  // no overflow
  // No weight at all: 0, not NaN.
  REQUIRE(knot::bce_with_logits(x, y, knot::zeros_like(w)).item() == 0.0);

  const Tensor leaf = knot::test::rand_leaf({3, 4}, 12, -4, 4);
  const Tensor yy = knot::from_vector(std::vector<double>{1, 0, 0, 1, 1, 0, 1, 0, 0, 0, 1, 1}, {3, 4});
  const Tensor ww = knot::from_vector(std::vector<double>{1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1}, {3, 4});
  REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return knot::bce_with_logits(in[0], yy, ww); },
                    std::vector<Tensor>{leaf});
  REQUIRE_THROWS_WITH(knot::bce_with_logits(x, y, knot::ones({3})), Catch::Contains("one shape"));
}
