// CUDA stubs of the norm family, compiled when kernels/cuda/norm.cu is not: each kernel of the
// family's list (kernels/norm.h) throws "<kernel>: CUDA ..." (kernels/dispatch.h).
#include "kernels/norm.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"  // a stub names its parameters and uses none

namespace knot::kernels::cuda {
KNOT_NORM_KERNELS(KNOT_CUDA_STUB)
}  // namespace knot::kernels::cuda
