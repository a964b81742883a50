// Small helpers shared by the basis layers in nn/bases/.
#pragma once

#include <string>

#include "nn/module.h"

namespace knot::nn {

// A child module that only holds named tensors, to reproduce a reference project's nested names
// ("layernorm.weight", "rbf.grid", "spline_linear.weight") without a class per wrapper.
class ParamHolder : public Module {
 public:
  explicit ParamHolder(std::string type) : type_(std::move(type)) {}
  std::string type_name() const override { return type_; }
  Tensor param(const std::string& name, const Tensor& t, bool trainable = true) {
    return register_parameter(name, t, trainable);
  }
  Tensor buffer(const std::string& name, const Tensor& t) { return register_buffer(name, t); }

 private:
  std::string type_;
};

}  // namespace knot::nn
