// CUDA stubs of the loss family, compiled when kernels/cuda/loss.cu is not: each kernel of the
// family's list (kernels/loss.h) throws "<kernel>: CUDA ..." (kernels/dispatch.h).
#include "kernels/loss.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"  // a stub names its parameters and uses none

namespace knot::kernels::cuda {
KNOT_LOSS_KERNELS(KNOT_CUDA_STUB)
}  // namespace knot::kernels::cuda
