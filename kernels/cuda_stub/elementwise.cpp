// CUDA stubs of the elementwise family, compiled when kernels/cuda/elementwise.cu is not: each kernel of the
// family's list (kernels/elementwise.h) throws "<kernel>: CUDA ..." (kernels/dispatch.h).
#include "kernels/elementwise.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"  // a stub names its parameters and uses none

namespace knot::kernels::cuda {
KNOT_ELEMENTWISE_KERNELS(KNOT_CUDA_STUB)
}  // namespace knot::kernels::cuda
