// Basis "legendre": y_o = Σ_i Σ_{d=0..D} c[i, o, d]·P_d(tanh x_i); no base branch, no bias.
// Parameter: legendre_coeffs (in, out, D+1) ~ N(0, std = 1/(in·(D+1))). Options: degree (4), dtype, seed.
// The worked example of docs/adding-a-basis.md, compiled and tested like every built-in basis.
// Math: kernels/bases/legendre.h; forward/backward: the generic fused kan_basis op.
#include "kernels/bases/legendre.h"

#include "kernels/bases/eval.h"
#include "nn/basis_registry.h"
#include "nn/export_graph.h"
#include "nn/init.h"
#include "ops/kan.h"
#include "ops/ops.h"

namespace knot::nn {
namespace {

class LegendreKAN : public KANLayer {
 public:
  LegendreKAN(int64_t in, int64_t out, int D, DType dt, Generator* gen) : KANLayer(in, out) {
    KNOT_CHECK(D >= 0, "kan_legendre: degree must be >= 0, got {}", D);
    legendre_coeffs = register_parameter("legendre_coeffs", empty({in, out, D + 1}, dt));
    NoGradGuard ng;
    init::normal_(legendre_coeffs, 0.0, 1.0 / static_cast<double>(in * (D + 1)), gen);
    eval_ = basis::make_basis_eval(D + 1, [D](auto x, int64_t /*feature*/, auto* phi, auto* dphi) {
      basis::legendre_eval(x, D, phi, dphi);
    });
  }
  std::string type_name() const override { return "LegendreKANLayer"; }
  std::vector<Tensor> edge_scale_parameters() const override { return {legendre_coeffs}; }
  std::string basis() const override { return "legendre"; }
  Tensor forward(const Tensor& x) const override {  // (..., in) -> (..., out)
    capture_input(x);  // for grid updates and knot inspect (basis_registry.h)
    return kan_basis(x, permute(legendre_coeffs, {1, 0, 2}).contiguous(), eval_, "kan_legendre");
  }
  Tensor edge_activations(const Tensor& x) const override {
    return basis_edge_activations(flatten_input(x, "kan_legendre"), permute(legendre_coeffs, {1, 0, 2}), eval_);
  }
  Tensor edge_values(const Tensor& x) const override {
    return basis_edge_values(flatten_input(x, "kan_legendre"), permute(legendre_coeffs, {1, 0, 2}), eval_);
  }
  // Export: P_0 = 1, P_1 = u, P_{d+1} = ((2d+1)·u·P_d − d·P_{d−1})/(d+1) on u = tanh x, then one MatMul
  // with the coefficients (basis_graph_matmul).
  std::string to_graph(ExportGraph& g, const std::string& x, const std::string& prefix) const override {
    const int D = static_cast<int>(legendre_coeffs.size(2)) - 1;
    std::string shape;
    const std::string u = g.unsqueeze(g.op("Tanh", {g.flatten_rows(x, in_, &shape)}), {2});  // (N, in, 1)
    std::vector<std::string> P{g.op("Expand", {g.scalar(1.0), g.op("Shape", {u})})};
    if (D >= 1) P.push_back(u);
    for (int d = 1; d < D; ++d)
      P.push_back(g.sub(g.mul(g.mul(u, P[d]), g.scalar((2.0 * d + 1) / (d + 1))), g.mul(P[d - 1], g.scalar(1.0 * d / (d + 1)))));
    const std::string phi = P.size() == 1 ? P[0] : g.op("Concat", P, {{"axis", int64_t{2}}});  // (N, in, D+1)
    const std::string y = basis_graph_matmul(g, phi, permute(legendre_coeffs, {1, 0, 2}), prefix + "legendre_coeffs");
    return g.unflatten_rows(y, shape, out_);
  }
  Tensor legendre_coeffs;

 private:
  kernels::BasisEval eval_;
};

}  // namespace
}  // namespace knot::nn

KNOT_REGISTER_BASIS(legendre) {
  using namespace knot;
  using namespace knot::nn;
  register_basis({"legendre", "Legendre polynomials P_d(tanh x), d ≤ degree",
                  [](int64_t in, int64_t out, const nlohmann::json& j) -> std::shared_ptr<KANLayer> {
                    Options o(j, "kan_legendre");  // unknown keys become errors in finish()
                    const int degree = o.get<int>("degree", 4, "polynomial degree (degree + 1 coefficients per edge)");
                    const DType dt = o.dtype();      // common option "dtype"
                    Generator* gen = o.generator();  // common option "seed"
                    o.finish();
                    return std::make_shared<LegendreKAN>(in, out, degree, dt, gen);
                  },
                  /*test_options=*/{{"degree", 3}}});  // small sizes for the gradcheck suite
}
