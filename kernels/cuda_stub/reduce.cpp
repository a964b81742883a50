// CUDA stub for the reduction family: compiled when kernels/cuda/reduce.cu is not.
#include "kernels/reduce.h"

namespace knot::kernels::cuda {

Tensor sum(const Tensor&, const std::vector<int>&) { cuda_unavailable("sum"); }
Tensor var(const Tensor&, const std::vector<int>&, int64_t) { cuda_unavailable("var"); }
ValuesIndices max_min(const Tensor&, int, bool take_max) { cuda_unavailable(take_max ? "max" : "min"); }
Tensor max_min_bwd(const Tensor&, const Tensor&, const Shape&, int) { cuda_unavailable("max"); }

}  // namespace knot::kernels::cuda
