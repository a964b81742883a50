// CUDA stub for the softmax family: compiled when kernels/cuda/softmax.cu is not.
#include "kernels/softmax.h"

namespace knot::kernels::cuda {

Tensor softmax_fwd(const Tensor&, int, bool log_space) { cuda_unavailable(log_space ? "log_softmax" : "softmax"); }
Tensor softmax_bwd(const Tensor&, const Tensor&, int, bool log_space) {
  cuda_unavailable(log_space ? "log_softmax" : "softmax");
}
Tensor logsumexp(const Tensor&, int) { cuda_unavailable("logsumexp"); }

}  // namespace knot::kernels::cuda
