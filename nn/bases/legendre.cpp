// Basis "legendre": y_o = Σ_i Σ_{d=0..D} c[i, o, d]·P_d(tanh x_i); no base branch, no bias.
// Parameter: legendre_coeffs (in, out, D+1) ~ N(0, std = 1/(in·(D+1))). Options: degree (4), dtype, seed.
// The worked example of docs/adding-a-basis.md, compiled and tested like every built-in basis.
// Math: kernels/bases/legendre.h; forward/backward: the generic fused kan_basis op.
#include "kernels/bases/legendre.h"

#include "kernels/bases/eval.h"
#include "nn/basis_registry.h"
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
                    const int degree = o.get<int>("degree", 4);
                    const DType dt = o.dtype();      // common option "dtype"
                    Generator* gen = o.generator();  // common option "seed"
                    o.finish();
                    return std::make_shared<LegendreKAN>(in, out, degree, dt, gen);
                  },
                  /*test_options=*/{{"degree", 3}}});  // small sizes for the gradcheck suite
}
