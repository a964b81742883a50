// The KAN basis sandbox: every registered basis is gradchecked in float64 (a new basis is picked up
// from the registry with no edit here), per-element derivatives of every KNOT_HD basis header against
// finite differences, the fused generic path against primitive-op composites, and reference names.
#include <cmath>
#include <functional>
#include <set>

#include "kernels/bases/chebyshev.h"
#include "kernels/bases/legendre.h"
#include "kernels/bases/eval.h"
#include "kernels/bases/fourier.h"
#include "kernels/bases/rational.h"
#include "kernels/bases/rbf.h"
#include "kernels/bases/relu_kan.h"
#include "nn/basis_registry.h"
#include "nn/kan.h"
#include "ops/kan.h"
#include "models/memory_estimate.h"
#include "tests/helpers.h"

using namespace knot;
using knot::test::max_abs_diff;
using knot::test::rand_leaf;

TEST_CASE("kan: the registry holds the built-in bases", "[kan]") {
  const auto names = nn::basis_names();
  for (const char* n : {"bspline", "chebyshev", "rbf", "fourier", "rational", "relu", "legendre"})
    REQUIRE(std::find(names.begin(), names.end(), n) != names.end());
  REQUIRE(names.front() == "bspline");
  REQUIRE(nn::has_basis("kan_chebyshev"));
  REQUIRE_THROWS_WITH(nn::register_basis(nn::basis_spec("rbf")), Catch::Contains("registered twice"));
}

TEST_CASE("kan: every registered basis passes a float64 gradcheck in x and every parameter", "[kan]") {
  for (const std::string& name : nn::basis_names()) {
    nlohmann::json opt = nn::basis_spec(name).test_options;
    opt["dtype"] = "f64";
    opt["seed"] = 17;
    auto layer = nn::make_kan_layer(name, 4, 3, opt);
    REQUIRE(layer->basis() == name);
    REQUIRE(layer->in_features() == 4);
    REQUIRE(layer->out_features() == 3);
    Tensor x = rand_leaf({2, 3, 4}, 41, -0.9, 0.9);
    const Tensor y = layer->forward(x);
    REQUIRE(y.shape() == Shape{2, 3, 3});  // leading dims kept
    std::vector<Tensor> inputs{x};
    for (auto& [n, p] : layer->named_parameters())
      if (p.requires_grad()) inputs.push_back(p);
    REQUIRE(inputs.size() >= 2);
    auto f = [&](const std::vector<Tensor>& in) { return layer->forward(in[0]); };
    INFO("basis " << name);
    REQUIRE_GRADCHECK(f, inputs);
    // Every trainable parameter gets a gradient from a plain backward.
    layer->zero_grad();
    sum(layer->forward(x)).backward();
    for (auto& [n, p] : layer->named_parameters()) {
      INFO("parameter " << n);
      if (p.requires_grad()) REQUIRE(p.grad().defined());
    }
  }
}

TEST_CASE("kan: per-element basis derivatives match finite differences", "[kan]") {
  using Fn = std::function<void(double, double*, double*)>;
  const double grid[5] = {-1.0, -0.4, 0.1, 0.5, 1.2};
  const double a[6] = {0.1, 1.0, -0.3, 0.2, 0.05, -0.02}, b[4] = {0.3, -0.2, 0.1, 0.05};
  const std::vector<std::pair<std::string, std::pair<int, Fn>>> cases = {
      {"chebyshev", {6, [](double x, double* p, double* d) { basis::chebyshev_eval(x, 5, p, d); }}},
      {"legendre", {6, [](double x, double* p, double* d) { basis::legendre_eval(x, 5, p, d); }}},
      {"rbf", {5, [&](double x, double* p, double* d) { basis::rbf_eval(x, grid, 5, 1.5, p, d); }}},
      {"fourier", {8, [](double x, double* p, double* d) { basis::fourier_eval(x, 4, p, d); }}},
      {"relu_kan", {1, [](double x, double* p, double* d) { p[0] = basis::relu_kan_value(x, -0.5, 0.7, d); }}},
      {"rational", {1, [&](double x, double* p, double* d) { p[0] = basis::rational_value(x, a, b, d); }}},
  };
  for (const auto& [name, c] : cases) {
    const auto& [nf, f] = c;
    std::vector<double> v(nf), dv(nf), vp(nf), vm(nf), dummy(nf);
    double worst = 0;
    for (double x = -1.37; x < 1.4; x += 0.0913) {
      f(x, v.data(), dv.data());
      f(x + 1e-6, vp.data(), dummy.data());
      f(x - 1e-6, vm.data(), dummy.data());
      for (int j = 0; j < nf; ++j) worst = std::max(worst, std::abs(dv[j] - (vp[j] - vm[j]) / 2e-6));
    }
    INFO("basis " << name);
    REQUIRE(worst < 1e-6);
  }
  // Values against the closed forms.
  double p[6];
  basis::chebyshev_eval(0.3, 5, p, static_cast<double*>(nullptr));
  for (int d = 0; d <= 5; ++d) REQUIRE(p[d] == Approx(std::cos(d * std::acos(std::tanh(0.3)))).epsilon(1e-12));
  basis::legendre_eval(-0.4, 5, p, static_cast<double*>(nullptr));
  {
    const double u = std::tanh(-0.4), u2 = u * u;
    const double P[6] = {1, u, (3 * u2 - 1) / 2, (5 * u2 - 3) * u / 2, (35 * u2 * u2 - 30 * u2 + 3) / 8,
                         ((63 * u2 - 70) * u2 + 15) * u / 8};
    for (int d = 0; d <= 5; ++d) REQUIRE(p[d] == Approx(P[d]).epsilon(1e-12));
  }
  basis::fourier_eval(0.7, 3, p, static_cast<double*>(nullptr));
  for (int k = 1; k <= 3; ++k) {
    REQUIRE(p[k - 1] == Approx(std::cos(k * 0.7)).epsilon(1e-12));
    REQUIRE(p[2 + k] == Approx(std::sin(k * 0.7)).epsilon(1e-12));
  }
  REQUIRE(basis::relu_kan_value(0.1, -0.5, 0.7, static_cast<double*>(nullptr)) == Approx(1.0));  // midpoint peak
  REQUIRE(basis::relu_kan_value(0.8, -0.5, 0.7, static_cast<double*>(nullptr)) == 0.0);
}

TEST_CASE("kan: the fused generic basis op equals its primitive-op composite", "[kan]") {
  // Chebyshev: y = Σ_i Σ_d c[i, o, d]·T_d(tanh x_i) with T_d = cos(d·acos u) written with ops.
  const int D = 4;
  Tensor x = rand_leaf({7, 3}, 51, -2, 2);
  Tensor w = rand_leaf({2, 3, D + 1}, 52);
  const auto eval = basis::make_basis_eval(D + 1, [](auto v, int64_t, auto* phi, auto* dphi) {
    basis::chebyshev_eval(v, D, phi, dphi);
  });
  const Tensor y = kan_basis(x, w, eval);
  const Tensor u = unsqueeze(tanh(x), -1);                                  // (7, 3, 1)
  std::vector<Tensor> Ts{ones_like(u), u};
  for (int d = 2; d <= D; ++d) Ts.push_back(sub(mul(mul(u, 2.0), Ts[d - 1]), Ts[d - 2]));
  const Tensor Phi = cat(Ts, -1);                                           // (7, 3, D+1)
  const Tensor yr = matmul(reshape(Phi, {7, 3 * (D + 1)}), reshape(w, {2, 3 * (D + 1)}), false, true);
  REQUIRE(max_abs_diff(y, yr) < 1e-12);
  const Tensor g = rand_leaf({7, 2}, 53).detach();
  sum(mul(y, g)).backward();
  const Tensor gx = x.grad(), gw = w.grad();
  x.zero_grad();
  w.zero_grad();
  sum(mul(yr, g)).backward();
  REQUIRE(max_abs_diff(gx, x.grad()) < 1e-12);
  REQUIRE(max_abs_diff(gw, w.grad()) < 1e-12);
  REQUIRE_THROWS_WITH(kan_basis(x, rand_leaf({2, 4, D + 1}, 1), eval),
                      Catch::Contains("kan_basis") && Catch::Contains("(2, 4, 5)"));

  // Fourier layer against cos/sin ops with its own parameters.
  auto layer = nn::make_kan_layer("fourier", 3, 2, {{"dtype", "f64"}, {"grid_size", 3}, {"seed", 2}});
  {
    NoGradGuard ng;
    layer->named_parameters()[1].second.copy_(from_values({0.5, -0.25}, {1, 2}, DType::f64));
  }
  const Tensor c = layer->named_parameters()[0].second;  // (2, out, in, G)
  const Tensor kx = mul(unsqueeze(x.detach(), -1), from_values({1, 2, 3}, {3}, DType::f64));  // (7, 3, G)
  const Tensor ref = add(add(sum(mul(unsqueeze(cos(kx), 1), select(c, 0, 0)), {-2, -1}),
                             sum(mul(unsqueeze(sin(kx), 1), select(c, 0, 1)), {-2, -1})),
                         from_values({0.5, -0.25}, {2}, DType::f64));
  REQUIRE(max_abs_diff(layer->forward(x.detach()), ref) < 1e-12);
}

TEST_CASE("kan: basis layers use their reference projects' parameter names and shapes", "[kan]") {
  auto names_of = [](const nn::KANLayer& l) {
    std::vector<std::pair<std::string, Shape>> r;
    for (auto& [n, t] : l.state_dict()) r.emplace_back(n, t.shape());
    return r;
  };
  using V = std::vector<std::pair<std::string, Shape>>;
  REQUIRE(names_of(*nn::make_kan_layer("chebyshev", 6, 5)) == V{{"cheby_coeffs", {6, 5, 5}}});
  REQUIRE(names_of(*nn::make_kan_layer("legendre", 6, 5)) == V{{"legendre_coeffs", {6, 5, 5}}});
  REQUIRE(names_of(*nn::make_kan_layer("fourier", 6, 5)) == V{{"fouriercoeffs", {2, 5, 6, 5}}, {"bias", {1, 5}}});
  REQUIRE(names_of(*nn::make_kan_layer("rbf", 6, 5)) == V{{"layernorm.weight", {6}},
                                                           {"layernorm.bias", {6}},
                                                           {"rbf.grid", {8}},
                                                           {"spline_linear.weight", {5, 48}},
                                                           {"base_linear.weight", {5, 6}},
                                                           {"base_linear.bias", {5}}});
  REQUIRE(names_of(*nn::make_kan_layer("relu", 6, 5)) == V{{"phase_low", {6, 8}},
                                                            {"phase_height", {6, 8}},
                                                            {"equal_size_conv.weight", {5, 1, 8, 6}},
                                                            {"equal_size_conv.bias", {5}}});
  REQUIRE(names_of(*nn::make_kan_layer("rational", 16, 5)) == V{{"weight_numerator", {8, 6}},
                                                                 {"weight_denominator", {8, 4}},
                                                                 {"linear.weight", {5, 16}},
                                                                 {"linear.bias", {5}}});
  // The rational layer starts as the identity followed by its Linear.
  auto rat = nn::make_kan_layer("rational", 4, 3, {{"dtype", "f64"}});
  const Tensor x = rand_leaf({5, 4}, 3).detach();
  const auto sd = rat->state_dict();
  REQUIRE(max_abs_diff(rat->forward(x), linear(x, sd[2].second, sd[3].second)) < 1e-12);
  // Chebyshev init std = 1/(in·(D+1)).
  auto ch = nn::make_kan_layer("chebyshev", 64, 64, {{"seed", 3}});
  const Tensor c = ch->state_dict()[0].second.to(DType::f64);
  REQUIRE(std::sqrt(mean(mul(c, c)).item()) == Approx(1.0 / (64 * 5)).epsilon(0.05));
  // A KAN stack of any basis.
  nn::KAN kan({3, 4, 2}, "kan_chebyshev");
  REQUIRE(kan.named_parameters()[1].first == "layers.1.cheby_coeffs");
  REQUIRE_THROWS_WITH(nn::make_kan_layer("rational", 6, 2, {{"groups", 4}}),
                      Catch::Contains("kan_rational: groups = 4 must divide in = 6"));
}

TEST_CASE("kan: per-edge functions add up to the layer's output for every basis that provides them", "[kan]") {
  // forward(x)[n, o] − Σ_i edge_values(x)[n, o, i] is the layer's bias: the same for every row.
  // A basis whose edges are not functions of one input (rbf's LayerNorm) says so.
  const std::set<std::string> without{"rbf"};
  for (const std::string& name : nn::basis_names()) {
    INFO(name);
    nlohmann::json opt = nn::basis_spec(name).test_options;
    opt["seed"] = 5;  // the layer's default dtype (f32): edge_values converts to f64 itself
    auto layer = nn::make_kan_layer(name, 4, 3, opt);
    Generator gen(6);
    const Tensor x = rand({20, 4}, DType::f32, &gen, -0.9, 0.9);
    if (without.count(name)) {
      REQUIRE_THROWS_WITH(layer->edge_values(x), Catch::Contains("kan_" + name));
      continue;
    }
    const Tensor e = layer->edge_values(x);
    REQUIRE(e.shape() == Shape{20, 3, 4});
    const auto y = layer->forward(x).to(DType::f64).to_vector<double>();
    const auto s = sum(e, {2}).to_vector<double>();
    for (int64_t o = 0; o < 3; ++o)
      for (int64_t n = 1; n < 20; ++n)
        REQUIRE(y[n * 3 + o] - s[n * 3 + o] == Approx(y[o] - s[o]).margin(1e-5));
  }
}

TEST_CASE("kan: the activation penalty (pykan's) matches the per-edge functions and passes a float64 gradcheck",
          "[kan]") {
  const std::set<std::string> without{"rbf"};
  for (const std::string& name : nn::basis_names()) {
    INFO(name);
    nlohmann::json opt = nn::basis_spec(name).test_options;
    opt["dtype"] = "f64";
    opt["seed"] = 9;
    auto layer = nn::make_kan_layer(name, 4, 3, opt);
    Generator gen(10);
    const Tensor x = rand({12, 4}, DType::f64, &gen, -0.9, 0.9);
    if (without.count(name)) {
      REQUIRE_THROWS_WITH(layer->edge_activations(x), Catch::Contains("kan_" + name));
      continue;
    }
    // The graph version computes the same numbers as edge_values.
    REQUIRE(max_abs_diff(layer->edge_activations(x), layer->edge_values(x)) < 1e-12);
    // a·Σ l1 + e·entropy by hand from edge_values.
    const auto e = layer->edge_values(x).to_vector<double>();
    std::vector<double> l1(12, 0.0);
    for (int64_t n = 0; n < 12; ++n)
      for (int64_t k = 0; k < 12; ++k) l1[k] += std::abs(e[n * 12 + k]) / 12.0;
    double total = 0, ent = 0;
    for (double v : l1) total += v;
    for (double v : l1) ent -= v / total * std::log(v / total);
    REQUIRE(layer->activation_regularization(x, 0.5, 2.0).item() == Approx(0.5 * total + 2.0 * ent).epsilon(1e-10));
    // Gradients in every parameter (x is a constant of the penalty).
    std::vector<Tensor> inputs;
    for (auto& [n, p] : layer->named_parameters())
      if (p.requires_grad()) inputs.push_back(p);
    auto f = [&](const std::vector<Tensor>&) { return layer->activation_regularization(x, 0.5, 2.0); };
    REQUIRE_GRADCHECK(f, inputs);
  }
}

namespace {
// Per output, the variance of y (N, out) across its rows, averaged over the outputs.
double output_variance(const knot::Tensor& y) {
  const int64_t N = y.size(0), out = y.size(1);
  const std::vector<double> v = y.to(knot::DType::f64).contiguous().to_vector<double>();
  double total = 0;
  for (int64_t o = 0; o < out; ++o) {
    double mean = 0, sq = 0;
    for (int64_t n = 0; n < N; ++n) mean += v[n * out + o];
    mean /= static_cast<double>(N);
    for (int64_t n = 0; n < N; ++n) sq += (v[n * out + o] - mean) * (v[n * out + o] - mean);
    total += sq / static_cast<double>(N - 1);
  }
  return total / static_cast<double>(out);
}
}  // namespace

TEST_CASE("kan: init variance_preserving gives every basis unit output variance on N(0, 1) inputs", "[kan]") {
  using namespace knot;
  knot::NoGradGuard ng;
  Generator data(11);  // not the probe the init measures on
  const int64_t in = 64, out = 48;
  const Tensor x = randn({4096, in}, DType::f32, &data);
  for (const auto& b : nn::basis_names()) {
    INFO("basis " << b);
    const auto vp = nn::make_kan_layer(b, in, out, {{"seed", 3}, {"init", "variance_preserving"}});
    const double v = output_variance(vp->forward(x));
    CAPTURE(v);
    REQUIRE(v > 0.85);
    REQUIRE(v < 1.15);
    // "default" is the basis' own initialisation, bit for bit, and the count of the memory estimate
    // knows the option.
    const auto plain = nn::make_kan_layer(b, in, out, {{"seed", 3}});
    const auto dflt = nn::make_kan_layer(b, in, out, {{"seed", 3}, {"init", "default"}});
    const auto pa = plain->parameters(), pd = dflt->parameters();
    REQUIRE(pa.size() == pd.size());
    for (size_t i = 0; i < pa.size(); ++i) REQUIRE(pa[i].to_vector<float>() == pd[i].to_vector<float>());
    REQUIRE(static_cast<int64_t>(models::count_kan_layer(b, in, out, {{"init", "variance_preserving"}}).parameters) ==
            vp->num_parameters());
  }
  REQUIRE_THROWS_WITH(nn::make_kan_layer("chebyshev", 4, 3, {{"init", "xavier"}}),
                      Catch::Contains("kan_chebyshev: option 'init' is \"xavier\"") &&
                          Catch::Contains("variance_preserving"));
}
