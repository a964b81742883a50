// CUDA stub for the dropout family: compiled when kernels/cuda/dropout.cu is not.
#include "kernels/dropout.h"

namespace knot::kernels::cuda {

Tensor dropout_fwd(const Tensor&, double, uint64_t, uint64_t, uint64_t) { cuda_unavailable("dropout"); }
Tensor dropout_bwd(const Tensor&, double, uint64_t, uint64_t, uint64_t) { cuda_unavailable("dropout"); }

}  // namespace knot::kernels::cuda
