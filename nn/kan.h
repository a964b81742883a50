// KAN: a stack of KAN layers [in, hidden…, out] (efficient-kan's KAN), any registered basis
// (B-spline KANLinear by default). Parameter names: layers.<i>.<the layer's names>, e.g.
// layers.0.base_weight, layers.0.spline_weight, layers.0.spline_scaler, buffer layers.0.grid.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "nn/basis_registry.h"
#include "nn/module.h"

namespace knot::nn {

class KAN : public Module {
 public:
  // widths: [in, hidden…, out], at least two entries. `options` go to every layer (see make_kan_layer).
  KAN(const std::vector<int64_t>& widths, const std::string& basis = "bspline",
      const nlohmann::json& options = nlohmann::json::object());
  std::string type_name() const override { return "KAN"; }

  // x: (..., in) -> (..., out). With update_grid, each layer first adapts its grid to its own input
  // (no gradient through the update), as efficient-kan's KAN.forward(x, update_grid=True).
  Tensor forward(const Tensor& x, bool update_grid = false);
  // Grid extension of every layer (KANLayer::refine_grid) to `grid_size`: each layer is refitted on
  // the input it receives from the stack as it was before (x: (..., in)). No gradient is recorded.
  void refine_grid(const Tensor& x, int64_t grid_size, double margin = 0.01);
  // Σ over layers of their regularization_loss(a, e).
  Tensor regularization_loss(double a = 1.0, double e = 1.0) const;

  size_t size() const { return layers->size(); }
  KANLayer& layer(size_t i) const { return layers->at<KANLayer>(i); }

  std::shared_ptr<ModuleList> layers;
};

}  // namespace knot::nn
