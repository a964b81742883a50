// CUDA stub for the normalisation family: compiled when kernels/cuda/norm.cu is not.
#include "kernels/norm.h"

namespace knot::kernels::cuda {

LayerNormFwd layer_norm_fwd(const Tensor&, const Tensor&, const Tensor&, int64_t, double) {
  cuda_unavailable("layer_norm");
}
LayerNormBwd layer_norm_bwd(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, int64_t, bool,
                            bool, bool) {
  cuda_unavailable("layer_norm");
}

}  // namespace knot::kernels::cuda
