// CUDA stubs of the embedding family, compiled when kernels/cuda/embedding.cu is not: each kernel of the
// family's list (kernels/embedding.h) throws "<kernel>: CUDA ..." (kernels/dispatch.h).
#include "kernels/embedding.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"  // a stub names its parameters and uses none

namespace knot::kernels::cuda {
KNOT_EMBEDDING_KERNELS(KNOT_CUDA_STUB)
}  // namespace knot::kernels::cuda
