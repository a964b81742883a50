// CUDA stub for the loss family: compiled when kernels/cuda/loss.cu is not.
#include "kernels/loss.h"

namespace knot::kernels::cuda {

CrossEntropyFwd cross_entropy_fwd(const Tensor&, const Tensor&, int64_t, int64_t, double) {
  cuda_unavailable("cross_entropy");
}
Tensor cross_entropy_bwd(const Tensor&, const Tensor&, const Tensor&, const Tensor&, int64_t, int64_t, double) {
  cuda_unavailable("cross_entropy");
}

}  // namespace knot::kernels::cuda
