// CUDA stubs of the indexing family, compiled when kernels/cuda/indexing.cu is not: each kernel of the
// family's list (kernels/indexing.h) throws "<kernel>: CUDA ..." (kernels/dispatch.h).
#include "kernels/indexing.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"  // a stub names its parameters and uses none

namespace knot::kernels::cuda {
KNOT_INDEXING_KERNELS(KNOT_CUDA_STUB)
}  // namespace knot::kernels::cuda
