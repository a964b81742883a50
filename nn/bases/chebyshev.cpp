// Basis "chebyshev" (ChebyKAN): y_o = Σ_i Σ_{d=0..D} c[i, o, d]·T_d(tanh x_i); no base branch, no bias.
// Parameter: cheby_coeffs (in, out, D+1) ~ N(0, std = 1/(in·(D+1))). Options: degree (4), dtype, seed.
// Math: kernels/bases/chebyshev.h; forward/backward: the generic fused kan_basis op.
#include "kernels/bases/chebyshev.h"

#include "kernels/bases/eval.h"
#include "nn/basis_registry.h"
#include "nn/export_graph.h"
#include "nn/init.h"
#include "ops/kan.h"
#include "ops/ops.h"

namespace knot::nn {
namespace {

class ChebyshevKAN : public KANLayer {
 public:
  ChebyshevKAN(int64_t in, int64_t out, int degree, DType dt, Generator* gen) : KANLayer(in, out), degree_(degree) {
    KNOT_CHECK(degree >= 0, "kan_chebyshev: degree must be >= 0, got {}", degree);
    cheby_coeffs = register_parameter("cheby_coeffs", empty({in, out, degree + 1}, dt));
    NoGradGuard ng;
    init::normal_(cheby_coeffs, 0.0, 1.0 / static_cast<double>(in * (degree + 1)), gen);
    const int D = degree;
    eval_ = basis::make_basis_eval(D + 1, [D](auto x, int64_t, auto* phi, auto* dphi) {
      basis::chebyshev_eval(x, D, phi, dphi);
    });
  }
  std::string type_name() const override { return "ChebyKANLayer"; }
  std::string basis() const override { return "chebyshev"; }
  Tensor forward(const Tensor& x) const override {
    capture_input(x);  // for grid updates and knot inspect (basis_registry.h)
    KNOT_CHECK(x.dim() >= 1 && x.size(-1) == in_, "kan_chebyshev: input {} does not match in_features = {}",
               shape_str(x.shape()), in_);
    return kan_basis(x, permute(cheby_coeffs, {1, 0, 2}).contiguous(), eval_, "kan_chebyshev");
  }
  Tensor edge_activations(const Tensor& x) const override {
    return basis_edge_activations(flatten_input(x, "kan_chebyshev"), permute(cheby_coeffs, {1, 0, 2}), eval_);
  }
  Tensor edge_values(const Tensor& x) const override {
    return basis_edge_values(flatten_input(x, "kan_chebyshev"), permute(cheby_coeffs, {1, 0, 2}), eval_);
  }
  std::vector<Tensor> edge_scale_parameters() const override { return {cheby_coeffs}; }
  // T_0 = 1, T_1 = u, T_{d+1} = 2u·T_d − T_{d−1} on u = tanh x, as the kernel computes them.
  std::string to_graph(ExportGraph& g, const std::string& x, const std::string& prefix) const override {
    std::string shape;
    const std::string u = g.unsqueeze(g.op("Tanh", {g.flatten_rows(x, in_, &shape)}), {2});  // (N, in, 1)
    std::vector<std::string> T{g.op("Expand", {g.scalar(1.0), g.op("Shape", {u})})};
    if (degree_ >= 1) T.push_back(u);
    const std::string two_u = degree_ >= 2 ? g.mul(u, g.scalar(2.0)) : "";
    for (int d = 2; d <= degree_; ++d) T.push_back(g.sub(g.mul(two_u, T[d - 1]), T[d - 2]));
    const std::string phi = T.size() == 1 ? T[0] : g.op("Concat", T, {{"axis", int64_t{2}}});  // (N, in, D+1)
    const std::string y = basis_graph_matmul(g, phi, permute(cheby_coeffs, {1, 0, 2}), prefix + "cheby_coeffs");
    return g.unflatten_rows(y, shape, out_);
  }
  Tensor cheby_coeffs;

 private:
  int degree_;
  kernels::BasisEval eval_;
};

}  // namespace
}  // namespace knot::nn

KNOT_REGISTER_BASIS(chebyshev) {
  using namespace knot;
  using namespace knot::nn;
  register_basis({"chebyshev", "Chebyshev polynomials T_d(tanh x), d ≤ degree (ChebyKAN)",
                  [](int64_t in, int64_t out, const nlohmann::json& j) -> std::shared_ptr<KANLayer> {
                    Options o(j, "kan_chebyshev");
                    const int degree = o.get<int>("degree", 4, "polynomial degree (degree + 1 coefficients per edge)");
                    const DType dt = o.dtype();
                    Generator* gen = o.generator();
                    o.finish();
                    return std::make_shared<ChebyshevKAN>(in, out, degree, dt, gen);
                  },
                  {{"degree", 3}}});
}
