// CUDA stub for the reduction family: compiled when kernels/cuda/reduce.cu is not.
#include "kernels/reduce.h"

namespace knot::kernels::cuda {

Tensor sum(const Tensor&, const std::vector<int>&) { cuda_unavailable("sum"); }

}  // namespace knot::kernels::cuda
