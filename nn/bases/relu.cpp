// Basis "relu" (ReLU-KAN): φ_j(x) = [ReLU(e_j − x)·ReLU(x − s_j)]²·16/(e_j − s_j)⁴, j = 0 … G+k−1,
// s = arange(−k, G)/G, e = s + (k+1)/G (the same for every input), then a full-window convolution,
// i.e. y = φ(x)_flat·Wᵀ + b.
// Parameters (ReLU-KAN's names): phase_low (in, G+k), phase_height (in, G+k) (trained with
// train_ab), equal_size_conv.weight (out, 1, G+k, in) and equal_size_conv.bias (out) — the
// convolution reads the (in, G+k) basis memory as a (G+k, in) image, so its flattened weight
// multiplies the flattened basis directly. Init: PyTorch Conv2d (kaiming_uniform a=√5, fan_in = (G+k)·in).
// Options: grid_size (G = 5), k (3), train_ab (true), dtype, seed. Built from primitive ops (the
// phases are trained); per-element math in kernels/bases/relu_kan.h.
#include <cmath>

#include "nn/bases/common.h"
#include "nn/basis_registry.h"
#include "nn/export_graph.h"
#include "nn/init.h"
#include "ops/ops.h"

namespace knot::nn {
namespace {

class ReLUKAN : public KANLayer {
 public:
  ReLUKAN(int64_t in, int64_t out, int G, int k, bool train_ab, DType dt, Generator* gen)
      : KANLayer(in, out), nf_(G + k) {
    KNOT_CHECK(G >= 1 && k >= 0, "kan_relu: need grid_size >= 1 and k >= 0, got {} and {}", G, k);
    std::vector<double> lo(static_cast<size_t>(in * nf_)), hi(lo.size());
    for (int64_t i = 0; i < in; ++i)
      for (int64_t j = 0; j < nf_; ++j) {
        lo[i * nf_ + j] = static_cast<double>(j - k) / G;
        hi[i * nf_ + j] = lo[i * nf_ + j] + static_cast<double>(k + 1) / G;
      }
    phase_low = register_parameter("phase_low", from_vector(lo, {in, nf_}).to(dt), train_ab);
    phase_height = register_parameter("phase_height", from_vector(hi, {in, nf_}).to(dt), train_ab);
    auto conv = register_module("equal_size_conv", std::make_shared<ParamHolder>("Conv2d"));
    weight = conv->param("weight", empty({out, 1, nf_, in}, dt));
    bias = conv->param("bias", empty({out}, dt));
    NoGradGuard ng;
    init::kaiming_uniform_(weight, std::sqrt(5.0), gen);
    const double b = 1.0 / std::sqrt(static_cast<double>(nf_ * in));
    init::uniform_(bias, -b, b, gen);
  }
  std::string type_name() const override { return "ReLUKANLayer"; }
  std::vector<Tensor> edge_scale_parameters() const override { return {weight}; }  // the conv's, not its bias
  std::string basis() const override { return "relu"; }
  Tensor forward(const Tensor& x) const override {
    capture_input(x);  // for grid updates and knot inspect (basis_registry.h)
    const Tensor phi = bumps(flatten_input(x, "kan_relu"), phase_low, phase_height);  // (N, in, nf)
    Tensor y = linear(reshape(phi, {-1, in_ * nf_}), reshape(weight, {out_, in_ * nf_}), bias);
    Shape s = x.shape();
    s.back() = out_;
    return reshape(y, s);
  }
  // The flattened basis (N, in·nf), index i·nf + j, meets the weight's flattened (out, in·nf) rows
  // element by element, so output o is Σ_i Σ_j φ_j(x_i)·W[o, i·nf + j]: a sum of one function per
  // input, φ_oi(x) = Σ_j φ_j(x)·W[o, i, j] with W = weight viewed as (out, in, nf). The bias is no edge's.
  Tensor edge_activations(const Tensor& x) const override {
    const Tensor phi = bumps(flatten_input(x, "kan_relu").detach().to(weight.dtype()), phase_low, phase_height);
    return mix_edges(phi, reshape(weight, {out_, in_, nf_}));  // (N, out, in)
  }
  Tensor edge_values(const Tensor& x) const override {
    NoGradGuard ng;
    auto f64 = [](const Tensor& t) { return t.detach().to(DType::f64); };
    const Tensor phi = bumps(f64(flatten_input(x, "kan_relu")), f64(phase_low), f64(phase_height));
    return sum(mul(unsqueeze(phi, 1), unsqueeze(reshape(f64(weight), {out_, in_, nf_}), 0)), {3}).contiguous();
  }
  // Export: the same primitives (Relu, Sub, Mul, Div), the phases' 16/(e−s)⁴ precomputed.
  std::string to_graph(ExportGraph& g, const std::string& x, const std::string& prefix) const override {
    std::string shape;
    const std::string x3 = g.unsqueeze(g.flatten_rows(x, in_, &shape), {2});  // (N, in, 1)
    const std::string lo = g.weight(prefix + "phase_low", phase_low), hi = g.weight(prefix + "phase_height", phase_height);
    const std::string a = g.op("Relu", {g.sub(hi, x3)}), b = g.op("Relu", {g.sub(x3, lo)});
    NoGradGuard ng;
    const Tensor w = sub(phase_height.detach(), phase_low.detach());
    const Tensor r = div(full({1}, 16.0, w.dtype()), mul(mul(w, w), mul(w, w)));  // (in, nf)
    const std::string ab = g.mul(a, b);
    const std::string phi = g.mul(g.mul(ab, ab), g.constant(prefix + "phase_scale", r));  // (N, in, nf)
    const std::string y = g.linear(g.reshape(phi, {-1, in_ * nf_}), prefix + "equal_size_conv.weight.as_matrix",
                                   reshape(weight.detach(), {out_, in_ * nf_}).contiguous(),
                                   prefix + "equal_size_conv.bias", bias);
    return g.unflatten_rows(y, shape, out_);
  }
  Tensor phase_low, phase_height, weight, bias;

 private:
  // φ_j(x_i) = [ReLU(e − x)·ReLU(x − s)]²·16/(e − s)⁴ for x2 (N, in) and phases s, e (in, nf):
  // (N, in, nf), a graph in the phases (they are trained with train_ab).
  static Tensor bumps(const Tensor& x2, const Tensor& lo, const Tensor& hi) {
    const Tensor x3 = unsqueeze(x2, -1);  // (N, in, 1)
    const Tensor a = relu(sub(hi, x3)), b = relu(sub(x3, lo));
    const Tensor w = sub(hi, lo);
    const Tensor r = div(full({1}, 16.0, x2.dtype()), mul(mul(w, w), mul(w, w)));  // 16/(e−s)⁴, (in, nf)
    const Tensor ab = mul(a, b);
    return mul(mul(ab, ab), r);
  }
  int64_t nf_;
};

}  // namespace
}  // namespace knot::nn

KNOT_REGISTER_BASIS(relu) {
  using namespace knot;
  using namespace knot::nn;
  register_basis({"relu", "squared ReLU bumps on G+k trainable intervals (ReLU-KAN)",
                  [](int64_t in, int64_t out, const nlohmann::json& j) -> std::shared_ptr<KANLayer> {
                    Options o(j, "kan_relu");
                    const int G = o.get<int>("grid_size", 5, "grid intervals"), k = o.get<int>("k", 3, "ReLU-KAN's order (the power of the ReLU bumps)");
                    const bool train_ab = o.get<bool>("train_ab", true, "train the bumps' phases");
                    const DType dt = o.dtype();
                    Generator* gen = o.generator();
                    o.finish();
                    return std::make_shared<ReLUKAN>(in, out, G, k, train_ab, dt, gen);
                  },
                  {{"grid_size", 3}, {"k", 2}}});
}
