// CUDA stub for the indexing family: compiled when kernels/cuda/indexing.cu is not.
#include "kernels/indexing.h"

namespace knot::kernels::cuda {

Tensor index_select(const Tensor&, int, const Tensor&) { cuda_unavailable("index_select"); }
Tensor index_select_bwd(const Tensor&, int, const Tensor&, int64_t) { cuda_unavailable("index_select"); }
Tensor where(const Tensor&, const Tensor&, const Tensor&) { cuda_unavailable("where"); }
Tensor masked_fill(const Tensor&, const Tensor&, double) { cuda_unavailable("masked_fill"); }

}  // namespace knot::kernels::cuda
