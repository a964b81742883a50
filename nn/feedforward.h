// Position-wise feed-forward network (Vaswani et al. 2017, §3.3) and its gated forms
// (Shazeer 2020, "GLU Variants Improve Transformer"):
//
//   plain:  y = out(dropout(act(in(x))))                      act: relu, gelu, silu/swish, ...
//   gated:  y = out(dropout(act(gate(x)) ⊙ in(x)))            glu: sigmoid, reglu: relu,
//                                                              geglu: gelu, swiglu: silu
//   x: (..., dim) -> (..., dim), hidden width `hidden`.
// Parameter names: in_proj, gate_proj (gated forms only), out_proj (kanformer: in_proj, gates,
// out_proj). bias_in applies to in_proj and gate_proj, bias_out to out_proj (kanformer's
// use_ffn_bias_1 / use_ffn_bias_2); KAN projections have no bias.
#pragma once

#include <memory>
#include <string>

#include "nn/layers.h"

namespace knot::nn {

// True for glu, reglu, geglu, swiglu.
bool is_gated_activation(const std::string& name);
// The activation applied to the gate of a gated form ("reglu" -> "relu"); the name itself otherwise.
std::string gate_activation(const std::string& name);
// Plain activations (ops activation()) and the gated names.
bool is_ffn_activation(const std::string& name);

class FeedForward : public Module {
 public:
  FeedForward(int64_t dim, int64_t hidden, const std::string& activation = "relu", double dropout = 0.0,
              const ProjectionSpec& proj = {}, bool bias_in = true, bool bias_out = true);
  std::string type_name() const override { return "FeedForward"; }
  Tensor forward(const Tensor& x) const;  // x: (..., dim) -> (..., dim)

  std::shared_ptr<Projection> in_proj, gate_proj, out_proj;  // gate_proj null unless gated
  const std::string& activation_name() const { return activation_; }

 private:
  std::string activation_, act_;
  std::shared_ptr<Dropout> dropout_;
};

}  // namespace knot::nn
