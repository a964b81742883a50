// nn::Linear (see linear.h).
#include "nn/linear.h"

#include <cmath>

#include "nn/export_graph.h"
#include "nn/init.h"
#include "ops/ops.h"

namespace knot::nn {

Linear::Linear(int64_t in, int64_t out, bool with_bias, DType dtype, Generator* gen) : in_(in), out_(out) {
  KNOT_CHECK(in > 0 && out > 0, "Linear: sizes must be positive, got in={} out={}", in, out);
  weight = register_parameter("weight", empty({out, in}, dtype));
  init::kaiming_uniform_(weight, std::sqrt(5.0), gen);
  if (with_bias) {
    bias = register_parameter("bias", empty({out}, dtype));
    const double b = 1.0 / std::sqrt(static_cast<double>(in));
    init::uniform_(bias, -b, b, gen);
  }
}

Tensor Linear::forward(const Tensor& x) const { return linear(x, weight, bias); }

std::string Linear::to_graph(ExportGraph& g, const std::string& x, const std::string& prefix) const {
  return g.linear(x, prefix + "weight", weight, prefix + "bias", bias);
}

}  // namespace knot::nn
