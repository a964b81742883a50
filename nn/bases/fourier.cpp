// Basis "fourier" (FourierKAN): y_o = Σ_i Σ_{k=1..G} a[o,i,k]·cos(k·x_i) + b[o,i,k]·sin(k·x_i) + bias_o.
// Parameters: fouriercoeffs (2, out, in, G) ~ N(0, 1)/(√in·√G) ([0] = cos, [1] = sin), bias (1, out) = 0.
// Options: grid_size (G = 5), bias (true), dtype, seed. Forward/backward: the generic fused kan_basis op.
#include "kernels/bases/fourier.h"

#include <cmath>

#include "kernels/bases/eval.h"
#include "nn/basis_registry.h"
#include "nn/export_graph.h"
#include "nn/init.h"
#include "ops/kan.h"
#include "ops/ops.h"

namespace knot::nn {
namespace {

class FourierKAN : public KANLayer {
 public:
  FourierKAN(int64_t in, int64_t out, int G, bool with_bias, DType dt, Generator* gen) : KANLayer(in, out), G_(G) {
    KNOT_CHECK(G >= 1, "kan_fourier: grid_size must be >= 1, got {}", G);
    fouriercoeffs = register_parameter("fouriercoeffs", empty({2, out, in, G}, dt));
    if (with_bias) bias = register_parameter("bias", zeros({1, out}, dt));
    NoGradGuard ng;
    init::normal_(fouriercoeffs, 0.0, 1.0 / (std::sqrt(static_cast<double>(in)) * std::sqrt(static_cast<double>(G))), gen);
    eval_ = basis::make_basis_eval(2 * G, [G](auto x, int64_t, auto* phi, auto* dphi) {
      basis::fourier_eval(x, G, phi, dphi);
    });
  }
  std::string type_name() const override { return "NaiveFourierKANLayer"; }
  std::vector<Tensor> edge_scale_parameters() const override { return {fouriercoeffs}; }  // not the bias
  std::string basis() const override { return "fourier"; }
  Tensor forward(const Tensor& x) const override {
    capture_input(x);  // for grid updates and knot inspect (basis_registry.h)
    KNOT_CHECK(x.dim() >= 1 && x.size(-1) == in_, "kan_fourier: input {} does not match in_features = {}",
               shape_str(x.shape()), in_);
    Tensor y = kan_basis(x, mixing(), eval_, "kan_fourier");
    return bias.defined() ? add(y, reshape(bias, {out_})) : y;
  }
  Tensor edge_activations(const Tensor& x) const override {
    return basis_edge_activations(flatten_input(x, "kan_fourier"), mixing(), eval_);
  }
  Tensor edge_values(const Tensor& x) const override {  // the bias is not an edge's
    return basis_edge_values(flatten_input(x, "kan_fourier"), mixing(), eval_);
  }
  // Export: [cos(k·x) …, sin(k·x) …], k = 1 … G (Cos and Sin of k·x directly; the kernel's
  // angle-addition recurrence agrees to rounding), one MatMul, plus the bias.
  std::string to_graph(ExportGraph& g, const std::string& x, const std::string& prefix) const override {
    std::string shape;
    const std::string x3 = g.unsqueeze(g.flatten_rows(x, in_, &shape), {2});  // (N, in, 1)
    std::vector<double> k(static_cast<size_t>(G_));
    for (int i = 0; i < G_; ++i) k[i] = i + 1;
    const std::string kx = g.mul(x3, g.constant(prefix + "frequencies", from_vector(k, {G_})));  // (N, in, G)
    const std::string phi = g.op("Concat", {g.op("Cos", {kx}), g.op("Sin", {kx})}, {{"axis", int64_t{2}}});
    std::string y = basis_graph_matmul(g, phi, mixing(), prefix + "fouriercoeffs");
    if (bias.defined()) y = g.add(y, g.weight(prefix + "bias", bias));  // (1, out) broadcasts over rows
    return g.unflatten_rows(y, shape, out_);
  }
  Tensor fouriercoeffs, bias;

 private:
  // (2, out, in, G) -> (out, in, 2, G) -> (out, in, 2G): cos block then sin block per input.
  Tensor mixing() const { return reshape(permute(fouriercoeffs, {1, 2, 0, 3}).contiguous(), {out_, in_, 2 * G_}); }
  int G_;
  kernels::BasisEval eval_;
};

}  // namespace
}  // namespace knot::nn

KNOT_REGISTER_BASIS(fourier) {
  using namespace knot;
  using namespace knot::nn;
  register_basis({"fourier", "cos(kx), sin(kx) for k = 1 … G, plus bias (FourierKAN)",
                  [](int64_t in, int64_t out, const nlohmann::json& j) -> std::shared_ptr<KANLayer> {
                    Options o(j, "kan_fourier");
                    const int G = o.get<int>("grid_size", 5, "frequencies per edge (cos and sin of 1 … G times the input)");
                    const bool b = o.get<bool>("bias", true, "a bias per output");
                    const DType dt = o.dtype();
                    Generator* gen = o.generator();
                    o.finish();
                    return std::make_shared<FourierKAN>(in, out, G, b, dt, gen);
                  },
                  {{"grid_size", 3}}});
}
