// CUDA stub for the embedding family: compiled when kernels/cuda/embedding.cu is not.
#include "kernels/embedding.h"

namespace knot::kernels::cuda {

Tensor embedding_fwd(const Tensor&, const Tensor&) { cuda_unavailable("embedding"); }
Tensor embedding_bwd(const Tensor&, const Tensor&, int64_t, int64_t) { cuda_unavailable("embedding"); }

}  // namespace knot::kernels::cuda
