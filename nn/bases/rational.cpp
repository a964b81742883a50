// Basis "rational" (KAT's group-rational KAN): per group of in/groups consecutive channels,
// f(x) = P(x)/(1 + |Q(x)|) with P(x) = Σ_{i=0..5} a_i xⁱ and Q(x) = Σ_{j=1..4} b_j xʲ, then a Linear.
// Parameters: weight_numerator (groups, 6), weight_denominator (groups, 4), linear.weight (out, in),
// linear.bias (out). Init: P(x) = x, Q = 0 (KAT's "identity" mode), plus U(±init_noise) on both.
// Options: groups (default: the largest divisor of in that is ≤ 8), init_noise (0), dtype, seed.
// Built from primitive ops (the coefficients are trained); per-element math in kernels/bases/rational.h.
#include <fmt/format.h>

#include "nn/bases/common.h"
#include "nn/basis_registry.h"
#include "nn/export_graph.h"
#include "nn/init.h"
#include "nn/linear.h"
#include "ops/ops.h"

namespace knot::nn {
namespace {

class RationalKAN : public KANLayer {
 public:
  RationalKAN(int64_t in, int64_t out, int64_t groups, double noise, DType dt, Generator* gen)
      : KANLayer(in, out), groups_(groups) {
    KNOT_CHECK(groups >= 1 && in % groups == 0, "kan_rational: groups = {} must divide in = {}", groups, in);
    std::vector<double> a(static_cast<size_t>(groups * 6), 0.0);
    for (int64_t g = 0; g < groups; ++g) a[g * 6 + 1] = 1.0;
    weight_numerator = register_parameter("weight_numerator", from_vector(a, {groups, 6}).to(dt));
    weight_denominator = register_parameter("weight_denominator", zeros({groups, 4}, dt));
    linear_ = register_module("linear", std::make_shared<Linear>(in, out, true, dt, gen));
    if (noise > 0) {
      NoGradGuard ng;
      weight_numerator.add_(rand({groups, 6}, dt, gen, -noise, noise));
      weight_denominator.add_(rand({groups, 4}, dt, gen, -noise, noise));
    }
  }
  std::string type_name() const override { return "KAT_Group"; }
  // linear.weight: the rational functions are shared per group and keep their shape (KAT's own init
  // fits them to a known activation); the layer's scale is the following linear layer's.
  std::vector<Tensor> edge_scale_parameters() const override { return {linear_->weight}; }
  std::string basis() const override { return "rational"; }
  Tensor forward(const Tensor& x) const override {
    capture_input(x);  // for grid updates and knot inspect (basis_registry.h)
    Tensor y = linear_->forward(rational(flatten_input(x, "kan_rational")));
    Shape s = x.shape();
    s.back() = out_;
    return reshape(y, s);
  }
  // φ_oi(x) = linear.weight[o, i]·F_g(i)(x); linear.bias is not an edge's.
  Tensor edge_activations(const Tensor& x) const override {
    const Tensor f = rational(flatten_input(x, "kan_rational").detach().to(weight_numerator.dtype()));  // (N, in)
    Tensor w;
    for (const auto& [name, p] : linear_->named_parameters(false))
      if (name == "weight") w = p;
    return mul(unsqueeze(f, 1), unsqueeze(w, 0));  // (N, out, in)
  }
  Tensor edge_values(const Tensor& x) const override {
    NoGradGuard ng;
    const Tensor f =
        rational(flatten_input(x, "kan_rational").to(weight_numerator.dtype())).to(DType::f64);  // (N, in)
    Tensor w;                                                                                   // (out, in)
    for (const auto& [name, p] : linear_->named_parameters(false))
      if (name == "weight") w = p.detach().to(DType::f64);
    return mul(unsqueeze(f, 1), unsqueeze(w, 0)).contiguous();  // (N, out, in)
  }
  // Export: the same Horner evaluation per channel group, Abs, Div, then the Linear.
  std::string to_graph(ExportGraph& g, const std::string& x, const std::string& prefix) const override {
    std::string shape;
    const std::string xg = g.reshape(g.flatten_rows(x, in_, &shape), {-1, groups_, in_ / groups_});
    auto coef = [&](const Tensor& w, const std::string& name, int64_t i) {  // (groups, 1)
      return g.constant(fmt::format("{}{}.{}", prefix, name, i), reshape(select(w.detach(), 1, i), {groups_, 1}));
    };
    std::string P = coef(weight_numerator, "weight_numerator", 5);
    for (int64_t i = 4; i >= 0; --i) P = g.add(g.mul(P, xg), coef(weight_numerator, "weight_numerator", i));
    std::string Q = coef(weight_denominator, "weight_denominator", 3);
    for (int64_t j = 2; j >= 0; --j) Q = g.add(g.mul(Q, xg), coef(weight_denominator, "weight_denominator", j));
    Q = g.mul(Q, xg);
    const std::string f = g.reshape(g.div(P, g.add(g.op("Abs", {Q}), g.scalar(1.0))), {-1, in_});
    return g.unflatten_rows(linear_->to_graph(g, f, prefix + "linear."), shape, out_);
  }
  Tensor weight_numerator, weight_denominator;

 private:
  // The group-rational function of every input: x (N, in) -> (N, in).
  Tensor rational(const Tensor& x2) const {
    const Tensor xg = reshape(x2, {-1, groups_, in_ / groups_});  // (N, groups, in/groups)
    auto coef = [&](const Tensor& w, int64_t i) { return reshape(select(w, 1, i), {groups_, 1}); };
    Tensor P = coef(weight_numerator, 5);
    for (int64_t i = 4; i >= 0; --i) P = add(mul(P, xg), coef(weight_numerator, i));
    Tensor Q = coef(weight_denominator, 3);
    for (int64_t j = 2; j >= 0; --j) Q = add(mul(Q, xg), coef(weight_denominator, j));
    Q = mul(Q, xg);
    return reshape(div(P, add(abs(Q), 1.0)), {-1, in_});
  }

  int64_t groups_;
  std::shared_ptr<Linear> linear_;
};

int64_t default_groups(int64_t in) {
  for (int64_t g = 8; g > 1; --g)
    if (in % g == 0) return g;
  return 1;
}

}  // namespace
}  // namespace knot::nn

KNOT_REGISTER_BASIS(rational) {
  using namespace knot;
  using namespace knot::nn;
  register_basis({"rational", "group-rational P(x)/(1+|Q(x)|) per channel group, then a Linear (KAT GR-KAN)",
                  [](int64_t in, int64_t out, const nlohmann::json& j) -> std::shared_ptr<KANLayer> {
                    Options o(j, "kan_rational");
                    const int64_t groups = o.get<int64_t>("groups", default_groups(in), "input groups sharing one rational function (GR-KAN; default: the largest divisor of in up to 8)");
                    const double noise = o.get<double>("init_noise", 0.0, "std of the noise added to the rational coefficients' initialisation");
                    const DType dt = o.dtype();
                    Generator* gen = o.generator();
                    o.finish();
                    return std::make_shared<RationalKAN>(in, out, groups, noise, dt, gen);
                  },
                  {{"init_noise", 0.3}}});
}
