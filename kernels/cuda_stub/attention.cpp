// CUDA stub for the fused attention family: compiled when kernels/cuda/attention.cu is not.
#include "kernels/attention.h"

namespace knot::kernels::cuda {

AttentionFwd attention_fwd(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const AttentionParams&) {
  cuda_unavailable("scaled_dot_product_attention");
}
AttentionBwd attention_bwd(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                           const Tensor&, const AttentionParams&) {
  cuda_unavailable("scaled_dot_product_attention");
}

}  // namespace knot::kernels::cuda
