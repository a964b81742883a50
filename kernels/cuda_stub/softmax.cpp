// CUDA stubs of the softmax family, compiled when kernels/cuda/softmax.cu is not: each kernel of the
// family's list (kernels/softmax.h) throws "<kernel>: CUDA ..." (kernels/dispatch.h).
#include "kernels/softmax.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"  // a stub names its parameters and uses none

namespace knot::kernels::cuda {
KNOT_SOFTMAX_KERNELS(KNOT_CUDA_STUB)
}  // namespace knot::kernels::cuda
