// Feed-forward network (see feedforward.h).
#include "nn/feedforward.h"

#include "ops/ops.h"

namespace knot::nn {

bool is_gated_activation(const std::string& name) {
  return name == "glu" || name == "reglu" || name == "geglu" || name == "swiglu";
}

std::string gate_activation(const std::string& name) {
  if (name == "glu") return "sigmoid";
  if (name == "reglu") return "relu";
  if (name == "geglu") return "gelu";
  if (name == "swiglu") return "silu";
  return name;
}

bool is_ffn_activation(const std::string& name) { return is_gated_activation(name) || is_activation(name); }

FeedForward::FeedForward(int64_t dim, int64_t hidden, const std::string& activation, double dropout,
                         const ProjectionSpec& proj, bool bias_in, bool bias_out)
    : activation_(activation), act_(gate_activation(activation)) {
  KNOT_CHECK(dim > 0 && hidden > 0, "FeedForward: sizes must be positive, got dim={} hidden={}", dim, hidden);
  KNOT_CHECK(is_ffn_activation(activation),
             "FeedForward: unknown activation '{}' (relu, gelu, silu, swish, sigmoid, tanh, elu, leaky_relu, glu, "
             "reglu, geglu, swiglu)",
             activation);
  in_proj = register_module("in_proj", proj.make(dim, hidden, bias_in));
  if (is_gated_activation(activation)) gate_proj = register_module("gate_proj", proj.make(dim, hidden, bias_in));
  out_proj = register_module("out_proj", proj.make(hidden, dim, bias_out));
  dropout_ = register_module("dropout", std::make_shared<Dropout>(dropout));
}

Tensor FeedForward::forward(const Tensor& x) const {
  // relu then dropout as one op that keeps only its output for backward (ops/nn_functional.h):
  // one (N, hidden) tensor less per FFN between forward and backward; the same numbers.
  if (!gate_proj && act_ == "relu")
    return out_proj->forward(relu_dropout(in_proj->forward(x), dropout_->p(), is_training(), dropout_->generator()));
  Tensor h = gate_proj ? mul(activation(act_, gate_proj->forward(x)), in_proj->forward(x))
                       : activation(act_, in_proj->forward(x));
  return out_proj->forward(dropout_->forward(h));
}

}  // namespace knot::nn
