// nn::MLP (see mlp.h).
#include "nn/mlp.h"

#include "ops/ops.h"

namespace knot::nn {

MLP::MLP(const std::vector<int64_t>& sizes, std::string activation, bool bias, DType dtype)
    : activation_(std::move(activation)) {
  KNOT_CHECK(sizes.size() >= 2, "MLP: needs at least [in, out] sizes, got {} sizes", sizes.size());
  KNOT_CHECK(is_activation(activation_), "MLP: unknown activation '{}'", activation_);
  layers_ = register_module("layers", std::make_shared<ModuleList>());
  for (size_t i = 0; i + 1 < sizes.size(); ++i) layers_->push_back(std::make_shared<Linear>(sizes[i], sizes[i + 1], bias, dtype));
}

Tensor MLP::forward(const Tensor& x) const {
  Tensor h = x;
  for (size_t i = 0; i < layers_->size(); ++i) {
    h = layers_->at<Linear>(i).forward(h);
    if (i + 1 < layers_->size()) h = activation(activation_, h);
  }
  return h;
}

}  // namespace knot::nn
