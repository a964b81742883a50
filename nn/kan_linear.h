// KANLinear: efficient-kan's B-spline KAN layer, same function, parameter names, shapes and defaults.
//
//   y = silu(x)·base_weightᵀ + B(x)·(spline_weight ⊙ spline_scaler[..., None])ᵀ  (+ bias, off by default)
//   x: (..., in) -> (..., out); B(x): Cox–de Boor B-splines of order k on the per-feature knots `grid`.
//
//   grid           buffer (in, G+2k+1): t_j = lo + j·h, h = (hi−lo)/G, j = −k … G+k
//   base_weight    (out, in)       kaiming_uniform(a = √5·scale_base)
//   spline_weight  (out, in, G+k)  curve2coeff of (U[0,1)−½)·scale_noise/G at the G+1 interior knots
//                                  (times scale_spline when there is no standalone scaler)
//   spline_scaler  (out, in)       kaiming_uniform(a = √5·scale_spline), with the standalone scaler only
//
// The forward pass is the fused op kan_bspline (ops/kan.h); with a base activation other than silu the
// base branch is a separate linear(act(x), base_weight).
#pragma once

#include <array>
#include <string>

#include "kernels/spline.h"
#include "nn/basis_registry.h"

namespace knot::nn {

struct KANLinearOptions {
  int64_t grid_size = 5;
  int spline_order = 3;
  double scale_noise = 0.1;
  double scale_base = 1.0;
  double scale_spline = 1.0;
  bool enable_standalone_scale_spline = true;
  std::string base_activation = "silu";  // any name ops/elementwise.h's activation() knows
  double grid_eps = 0.02;
  std::array<double, 2> grid_range{-1.0, 1.0};
  bool bias = false;
  kernels::SplinePath path = kernels::SplinePath::automatic;  // "auto", "dense" or "local" in JSON
  DType dtype = DType::f32;

  // Keys as above (grid_range as [lo, hi]); unknown keys are errors. `o` may also hold dtype/seed.
  static KANLinearOptions from_options(Options& o);
};

class KANLinear : public KANLayer {
 public:
  KANLinear(int64_t in, int64_t out, const KANLinearOptions& opt = {}, Generator* gen = nullptr);
  std::string type_name() const override { return "KANLinear"; }
  std::string basis() const override { return "bspline"; }

  // x: (..., in) -> (..., out)
  Tensor forward(const Tensor& x) const override;
  // Export: Cox–de Boor in standard operators (kan_linear.cpp).
  std::string to_graph(ExportGraph& g, const std::string& x, const std::string& prefix) const override;
  // x: (N, in) -> (N, in, G+k), the B-spline values on the current grid (not differentiable).
  Tensor b_splines(const Tensor& x) const;
  // Least-squares coefficients (minimum norm when under-determined), per input feature:
  // x: (N, in), y: (N, in, out) -> C: (out, in, G+k) with B(x[:, i])·C[:, i, :]ᵀ ≈ y[:, i, :].
  Tensor curve2coeff(const Tensor& x, const Tensor& y) const;
  // spline_weight ⊙ spline_scaler[..., None] (or spline_weight without the standalone scaler).
  Tensor scaled_spline_weight() const;
  // Adaptive grid from the batch x: (..., in), then refit spline_weight so that the spline outputs
  // on x are kept (least squares in the new spline space). No gradient is recorded.
  void update_grid(const Tensor& x, double margin = 0.01) override;
  // pykan's grid extension (refine): the same, with a new grid size G' (any G' >= 1; usually
  // larger). grid becomes (in, G'+2k+1) and spline_weight (out, in, G'+k) — new tensors under the
  // same handles, so an optimizer holding them must be rebuilt — and options().grid_size G'.
  void refine_grid(const Tensor& x, int64_t grid_size, double margin = 0.01) override;
  // a·Σ l1 + e·entropy(l1 / Σ l1), l1 = mean_c |spline_weight| (out, in).
  bool has_regularization() const override { return true; }
  // φ_oi(x) = base_weight[o, i]·act(x) + Σ_j B_j(x)·spline_weight[o, i, j]·spline_scaler[o, i].
  Tensor edge_values(const Tensor& x) const override;
  Tensor edge_activations(const Tensor& x) const override;
  // base_weight and spline_weight (spline_scaler multiplies the latter and is left as it is).
  std::vector<Tensor> edge_scale_parameters() const override {
    std::vector<Tensor> w{spline_weight};
    if (base_weight.defined()) w.push_back(base_weight);
    return w;
  }
  Tensor knot_grid(int* order) const override {
    if (order) *order = opt_.spline_order;
    return grid;
  }
  Tensor regularization_loss(double a = 1.0, double e = 1.0) const override;

  const KANLinearOptions& options() const { return opt_; }
  // A loaded `grid` must be finite and non-decreasing per input feature, spanning an interval
  // (repeated knots are allowed: update_grid can produce them; the B-spline terms then vanish).
  void check_state(const IncomingTensor& incoming, const std::string& prefix,
                   std::vector<std::string>& problems) const override;
  // A run trained with grid extension (train.kan_grid_extend) stores larger grids than its config
  // says: when the incoming `grid` (in, G'+2k+1) and `spline_weight` (out, in, G'+k) agree on a grid
  // size G' >= 1 other than this layer's, the layer takes G' (Module::adopt_state_shapes).
  std::map<std::string, Shape> adopt_state_shapes(const IncomingTensor& incoming, bool apply) override;

  Tensor grid;           // (in, G+2k+1) buffer
  Tensor base_weight;    // (out, in)
  Tensor spline_weight;  // (out, in, G+k)
  Tensor spline_scaler;  // (out, in), undefined without the standalone scaler
  Tensor bias;           // (out), undefined unless opt.bias

 private:
  // update_grid / refine_grid: new knots for grid size G from x, and the refit (kan_linear.cpp).
  void regrid(const Tensor& x, double margin, int64_t G, const char* op);
  KANLinearOptions opt_;
};

}  // namespace knot::nn
