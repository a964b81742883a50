// nn::MLP: Linear layers [in, hidden..., out] with an activation between them (none after the
// last). Submodules are named "layers.0", "layers.1", ...
#pragma once

#include <string>
#include <vector>

#include "nn/linear.h"

namespace knot::nn {

class MLP : public Module {
 public:
  MLP(const std::vector<int64_t>& sizes, std::string activation = "relu", bool bias = true, DType dtype = DType::f32);
  std::string type_name() const override { return "MLP"; }
  Tensor forward(const Tensor& x) const;

 private:
  std::shared_ptr<ModuleList> layers_;
  std::string activation_;
};

}  // namespace knot::nn
