// nn::Linear: y = x·Wᵀ + b, x: (..., in) -> (..., out). PyTorch's init: W ~ kaiming_uniform(a=√5),
// i.e. U(±1/√in), and b ~ U(±1/√in). Parameter names "weight" (out, in) and "bias" (out).
#pragma once

#include "core/rng.h"
#include "nn/projection.h"

namespace knot::nn {

class Linear : public Projection {
 public:
  // gen: the initialisation RNG (the default generator when null).
  Linear(int64_t in, int64_t out, bool bias = true, DType dtype = DType::f32, Generator* gen = nullptr);
  std::string type_name() const override { return "Linear"; }
  Tensor forward(const Tensor& x) const override;
  std::string to_graph(ExportGraph& g, const std::string& x, const std::string& prefix) const override;
  int64_t in_features() const override { return in_; }
  int64_t out_features() const override { return out_; }

  Tensor weight;
  Tensor bias;  // undefined without bias

 private:
  int64_t in_, out_;
};

}  // namespace knot::nn
