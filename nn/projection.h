// The projection factory: every projection in the models (q/k/v/out, FFN, heads) is built here
// from a layer kind, so "replace the linear layers with KANLinear" is one config value.
//   kind "mlp"           -> nn::Linear (with or without bias)
//   kind "kan_<basis>"   -> the KAN layer of a registered basis (kan_bspline, kan_chebyshev, ...);
//                           KAN projections have no bias, as in the reference projects.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "nn/module.h"

namespace knot::nn {

class ExportGraph;  // nn/export_graph.h

// A module mapping (..., in) -> (..., out).
class Projection : public Module {
 public:
  virtual Tensor forward(const Tensor& x) const = 0;
  virtual int64_t in_features() const = 0;
  virtual int64_t out_features() const = 0;
  // Writes forward (inference) into g as standard operators: value x (..., in) -> the returned
  // value (..., out). `prefix` is the module's dotted path with a trailing dot ("encoder.layers.0.
  // ffn.in_proj."), so weights keep their state_dict names. An error naming the layer when it has
  // no export (KAN layers: the basis, see docs/adding-a-basis.md).
  virtual std::string to_graph(ExportGraph& g, const std::string& x, const std::string& prefix) const;
};

// `options` holds the basis' own settings (grid_size, spline_order, ...); unknown keys are errors.
std::shared_ptr<Projection> make_projection(const std::string& kind, int64_t in, int64_t out, bool bias,
                                            const nlohmann::json& options = nlohmann::json::object());
// "mlp" and every registered "kan_<basis>".
std::vector<std::string> projection_kinds();

}  // namespace knot::nn
