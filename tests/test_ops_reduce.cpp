// Reductions: sum, mean, var, logsumexp, max/min (values + indices), max over all, argmax.
// Each op: forward vs a naive loop reference, f64 finite-difference gradcheck, non-contiguous
// inputs and negative dims, f32 close to f64, and errors that name the op.
#include <limits>

#include "tests/helpers.h"

using namespace knot;
using knot::test::all_close;
using knot::test::max_abs_diff;
using knot::test::rand_leaf;

namespace {

// Naive reference of a reduction over one dim of a row-major value list: row_fn(row) -> value.
template <typename F>
std::vector<double> ref_reduce_dim(const std::vector<double>& v, const Shape& s, int dim, F row_fn) {
  int64_t outer = 1, n = s[dim], inner = 1;
  for (int d = 0; d < dim; ++d) outer *= s[d];
  for (size_t d = dim + 1; d < s.size(); ++d) inner *= s[d];
  std::vector<double> out;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      std::vector<double> row;
      for (int64_t j = 0; j < n; ++j) row.push_back(v[(o * n + j) * inner + i]);
      out.push_back(row_fn(row));
    }
  return out;
}

double ref_var(const std::vector<double>& row, bool unbiased) {
  double m = 0;
  for (double x : row) m += x;
  m /= static_cast<double>(row.size());
  double ss = 0;
  for (double x : row) ss += (x - m) * (x - m);
  return ss / static_cast<double>(row.size() - (unbiased ? 1 : 0));
}

double ref_lse(const std::vector<double>& row) {
  double m = -std::numeric_limits<double>::infinity();
  for (double x : row) m = std::max(m, x);
  double s = 0;
  for (double x : row) s += std::exp(x - m);
  return m + std::log(s);
}

void require_values(const Tensor& t, const std::vector<double>& want, double tol = 1e-12) {
  const auto got = t.to_vector<double>();
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) REQUIRE(got[i] == Approx(want[i]).margin(tol).epsilon(tol));
}

}  // namespace

TEST_CASE("sum and mean: still reduce any dims, with gradients", "[ops]") {
  Tensor x = rand_leaf({3, 4, 5}, 1);
  const auto v = x.to_vector<double>();
  require_values(sum(x, {1}), ref_reduce_dim(v, {3, 4, 5}, 1, [](const std::vector<double>& r) {
                   double s = 0;
                   for (double e : r) s += e;
                   return s;
                 }));
  REQUIRE(mean(x, {-1}, true).shape() == Shape{3, 4, 1});
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return mean(in[0], {0, 2}); }, {x});
}

TEST_CASE("var: matches a naive two-pass reference over any dims", "[ops]") {
  Tensor x = rand_leaf({3, 4, 5}, 2);
  const auto v = x.to_vector<double>();
  for (bool unbiased : {false, true}) {
    require_values(var(x, {1}, unbiased), ref_reduce_dim(v, {3, 4, 5}, 1, [&](auto& r) { return ref_var(r, unbiased); }));
    require_values(var(x, {-1}, unbiased), ref_reduce_dim(v, {3, 4, 5}, 2, [&](auto& r) { return ref_var(r, unbiased); }));
    require_values(var(x, {}, unbiased), {ref_var(v, unbiased)});
  }
  // Two dims at once, non-adjacent: against var of the flattened (3·5) rows.
  Tensor xp = permute(x, {1, 0, 2}).contiguous().reshape({4, 15});
  require_values(var(x, {0, 2}, true), var(xp, {1}, true).to_vector<double>());
  REQUIRE(var(x, {0, 2}, false, true).shape() == Shape{1, 4, 1});
  REQUIRE(var(x, {1}).shape() == Shape{3, 5});
}

TEST_CASE("var: is accurate for f32 data with a large mean", "[ops]") {
  // E[x²] − E[x]² would lose every digit here; the two-pass kernel keeps them.
  Generator gen(12);
  Tensor x = add(mul(randn({1000}, DType::f64, &gen), 0.01), 1e4).to(DType::f32);
  const double want = ref_var(x.to_vector<double>(), false);  // of the f32 values, in f64
  REQUIRE(want > 5e-5);
  REQUIRE(var(x).item() == Approx(want).epsilon(1e-5));
}

TEST_CASE("var: non-contiguous input and f32 agree with f64", "[ops]") {
  Tensor x = rand_leaf({4, 6}, 3);
  Tensor xt = x.t();  // (6, 4), strides (1, 6)
  const auto ref = ref_reduce_dim(xt.contiguous().to_vector<double>(), {6, 4}, 0, [](auto& r) { return ref_var(r, true); });
  require_values(var(xt, {0}, true), ref);
  Tensor sl = x.slice(1, 0, 6, 2);  // (4, 3), every other column
  require_values(var(sl, {1}), ref_reduce_dim(sl.contiguous().to_vector<double>(), {4, 3}, 1, [](auto& r) { return ref_var(r, false); }));
  REQUIRE(max_abs_diff(var(xt.to(DType::f32), {0}, true).to(DType::f64), var(xt, {0}, true)) < 1e-6);
}

TEST_CASE("var: gradcheck (biased, unbiased, several dims, transposed)", "[ops]") {
  Tensor x = rand_leaf({3, 4, 5}, 4);
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return var(in[0], {1}); }, {x});
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return var(in[0], {0, 2}, true); }, {x});
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return var(in[0], {}, true); }, {x});
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return var(in[0].transpose(0, 2), {-1}, false, true); }, {x});
}

TEST_CASE("var: equals the mean of squared deviations (composite)", "[ops]") {
  Tensor x = rand_leaf({5, 7}, 5);
  Tensor c = sub(x, mean(x, {1}, true));
  Tensor composite = mean(mul(c, c), {1});
  REQUIRE(all_close(var(x, {1}), composite, 1e-12));
}

TEST_CASE("var: errors name the op", "[ops]") {
  Tensor xi = from_values({1, 2, 3}, {3}, DType::i64);
  REQUIRE_THROWS_WITH(var(xi), Catch::Contains("var") && Catch::Contains("float"));
  Tensor x = zeros({2, 3});
  REQUIRE_THROWS_WITH(var(x, {1, -1}), Catch::Contains("var") && Catch::Contains("repeated"));
  REQUIRE_THROWS_WITH(var(x, {2}), Catch::Contains("var") && Catch::Contains("out of range"));
}

TEST_CASE("logsumexp: matches the reference along every dim, keepdim shapes", "[ops]") {
  Tensor x = rand_leaf({3, 4, 5}, 6, -3, 3);
  const auto v = x.to_vector<double>();
  for (int d = 0; d < 3; ++d) {
    require_values(logsumexp(x, d), ref_reduce_dim(v, {3, 4, 5}, d, ref_lse));
    require_values(logsumexp(x, d - 3), ref_reduce_dim(v, {3, 4, 5}, d, ref_lse));
  }
  REQUIRE(logsumexp(x, 1, true).shape() == Shape{3, 1, 5});
  REQUIRE(logsumexp(x, 1).shape() == Shape{3, 5});
}

TEST_CASE("logsumexp: stable for large and -inf inputs", "[ops]") {
  Tensor x = from_values({1000, 1000, 999, -1000}, {4}, DType::f64);
  REQUIRE(logsumexp(x, 0).item() == Approx(1000 + std::log(2 + std::exp(-1.0))).epsilon(1e-14));
  const double inf = std::numeric_limits<double>::infinity();
  Tensor y = from_vector<double>({-inf, 0.0, -inf, -inf}, {2, 2});
  const auto r = logsumexp(y, 1).to_vector<double>();
  REQUIRE(r[0] == Approx(0.0).margin(1e-15));
  REQUIRE(r[1] == -inf);
  Tensor xf = from_values({88, 89, 90}, {3}, DType::f32);  // exp(90) overflows f32
  REQUIRE(std::isfinite(logsumexp(xf, 0).item()));
  REQUIRE(logsumexp(xf, 0).item() == Approx(ref_lse({88, 89, 90})).epsilon(1e-6));
}

TEST_CASE("logsumexp: non-contiguous, f32 vs f64, gradcheck", "[ops]") {
  Tensor x = rand_leaf({4, 6}, 7, -2, 2);
  Tensor xt = x.t();
  require_values(logsumexp(xt, -1), ref_reduce_dim(xt.contiguous().to_vector<double>(), {6, 4}, 1, ref_lse));
  Tensor sl = x.slice(1, 1, 6, 2);
  require_values(logsumexp(sl, 0), ref_reduce_dim(sl.contiguous().to_vector<double>(), {4, 3}, 0, ref_lse));
  REQUIRE(max_abs_diff(logsumexp(xt.to(DType::f32), 1).to(DType::f64), logsumexp(xt, 1)) < 1e-5);
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return logsumexp(in[0], 0); }, {x});
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return logsumexp(in[0].t(), -1, true); }, {x});
  Tensor x3 = rand_leaf({2, 3, 4}, 8, -2, 2);
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return logsumexp(in[0], 1); }, {x3});
}

TEST_CASE("logsumexp: errors name the op", "[ops]") {
  REQUIRE_THROWS_WITH(logsumexp(zeros({2, 3}), 2), Catch::Contains("logsumexp") && Catch::Contains("out of range"));
  REQUIRE_THROWS_WITH(logsumexp(from_values({1, 2}, {2}, DType::i32), 0), Catch::Contains("logsumexp"));
}

TEST_CASE("max/min: values and first indices vs a naive reference", "[ops]") {
  Tensor x = rand_leaf({3, 4, 5}, 9);
  const auto v = x.to_vector<double>();
  for (int d = 0; d < 3; ++d) {
    auto argbest = [&](bool mx) {
      return ref_reduce_dim(v, {3, 4, 5}, d, [&](const std::vector<double>& r) {
        size_t b = 0;
        for (size_t j = 1; j < r.size(); ++j)
          if (mx ? r[j] > r[b] : r[j] < r[b]) b = j;
        return static_cast<double>(b);
      });
    };
    auto best = [&](bool mx) {
      return ref_reduce_dim(v, {3, 4, 5}, d, [&](const std::vector<double>& r) {
        return mx ? *std::max_element(r.begin(), r.end()) : *std::min_element(r.begin(), r.end());
      });
    };
    MaxResult mx = max(x, d - 3), mn = min(x, d);
    REQUIRE(mx.indices.dtype() == DType::i64);
    require_values(mx.values, best(true));
    require_values(mx.indices, argbest(true));
    require_values(mn.values, best(false));
    require_values(mn.indices, argbest(false));
    require_values(argmax(x, d), argbest(true));
  }
  REQUIRE(max(x, 1, true).values.shape() == Shape{3, 1, 5});
  REQUIRE(max(x, 1, true).indices.shape() == Shape{3, 1, 5});
  REQUIRE(argmax(x, -1).shape() == Shape{3, 4});
  REQUIRE(max(x).dim() == 0);
  REQUIRE(max(x).item() == *std::max_element(v.begin(), v.end()));
}

TEST_CASE("max/min: ties pick the first index and send the whole gradient there", "[ops]") {
  Tensor x = from_values({1, 3, 3, 0, 2, 2, 0, 2}, {2, 4}, DType::f64);
  x.requires_grad_();
  MaxResult m = max(x, 1);
  REQUIRE(m.indices.to_vector<int64_t>() == std::vector<int64_t>{1, 0});
  sum(m.values).backward();
  REQUIRE(x.grad().to_vector<double>() == std::vector<double>{0, 1, 0, 0, 1, 0, 0, 0});
  x.zero_grad();
  MaxResult n = min(x, 1);
  REQUIRE(n.indices.to_vector<int64_t>() == std::vector<int64_t>{3, 2});
  sum(n.values).backward();
  REQUIRE(x.grad().to_vector<double>() == std::vector<double>{0, 0, 0, 1, 0, 0, 1, 0});
  x.zero_grad();
  max(x).backward();  // global max 3 appears at flat 1 and 2
  REQUIRE(x.grad().to_vector<double>() == std::vector<double>{0, 1, 0, 0, 0, 0, 0, 0});
}

TEST_CASE("max/min: NaN wins, as in PyTorch", "[ops]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor x = from_vector<double>({1.0, nan, 5.0}, {3});
  REQUIRE(max(x, 0).indices.item() == 1);
  REQUIRE(std::isnan(min(x, 0).values.item()));
}

TEST_CASE("max/min: non-contiguous inputs, integer argmax, f32", "[ops]") {
  Tensor x = rand_leaf({4, 6}, 10);
  Tensor xt = x.t();  // (6, 4)
  Tensor xc = xt.contiguous();
  REQUIRE(max(xt, 1).values.to_vector<double>() == max(xc, 1).values.to_vector<double>());
  REQUIRE(min(xt, 0).indices.to_vector<int64_t>() == min(xc, 0).indices.to_vector<int64_t>());
  Tensor sl = x.slice(1, 1, 6, 2);  // (4, 3)
  REQUIRE(argmax(sl, 1).to_vector<int64_t>() == argmax(sl.contiguous(), 1).to_vector<int64_t>());
  Tensor xi = from_values({3, 9, 2, 7, 7, 1}, {2, 3}, DType::i32);
  REQUIRE(argmax(xi, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 0});
  REQUIRE(max(xi, 0).values.to_vector<int32_t>() == std::vector<int32_t>{7, 9, 2});
  REQUIRE(max_abs_diff(max(xt.to(DType::f32), 0).values.to(DType::f64), max(xt, 0).values) < 1e-6);
}

TEST_CASE("max/min: gradcheck (distinct values, strided input)", "[ops]") {
  Tensor x = rand_leaf({3, 4, 5}, 11);
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return max(in[0], 1).values; }, {x});
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return min(in[0], -1, true).values; }, {x});
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return max(in[0].transpose(0, 2), 0).values; }, {x});
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return max(in[0]); }, {x});
}

TEST_CASE("max/min/argmax: errors name the op", "[ops]") {
  Tensor x = zeros({2, 0});
  REQUIRE_THROWS_WITH(max(x, 1), Catch::Contains("max") && Catch::Contains("size 0"));
  REQUIRE_THROWS_WITH(min(x, 1), Catch::Contains("min") && Catch::Contains("size 0"));
  REQUIRE_THROWS_WITH(argmax(x, 1), Catch::Contains("argmax") && Catch::Contains("size 0"));
  REQUIRE_THROWS_WITH(max(x), Catch::Contains("max") && Catch::Contains("non-empty"));
  REQUIRE_THROWS_WITH(max(zeros({2, 3}), -3), Catch::Contains("max") && Catch::Contains("out of range"));
}

TEST_CASE("reductions: large inputs take the threaded path and agree with the reference", "[ops]") {
  // 300·400 elements is above kParallelGrain, so rows are split across threads.
  Generator gen(13);
  Tensor x = randn({300, 400}, DType::f64, &gen);
  const auto v = x.to_vector<double>();
  for (int d : {0, 1}) {
    require_values(var(x, {d}, true), ref_reduce_dim(v, {300, 400}, d, [](auto& r) { return ref_var(r, true); }), 1e-10);
    require_values(logsumexp(x, d), ref_reduce_dim(v, {300, 400}, d, ref_lse), 1e-10);
    require_values(max(x, d).values, ref_reduce_dim(v, {300, 400}, d, [](const std::vector<double>& r) {
                     return *std::max_element(r.begin(), r.end());
                   }));
  }
  // Gradient scatter of max over the large tensor: one 1 per column.
  x.requires_grad_();
  sum(max(x, 0).values).backward();
  REQUIRE(sum(x.grad()).item() == 400.0);
  REQUIRE(max_abs_diff(sum(x.grad(), {0}), ones({400}, DType::f64)) == 0.0);
}
