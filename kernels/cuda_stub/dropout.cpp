// CUDA stubs of the dropout family, compiled when kernels/cuda/dropout.cu is not: each kernel of the
// family's list (kernels/dropout.h) throws "<kernel>: CUDA ..." (kernels/dispatch.h).
#include "kernels/dropout.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"  // a stub names its parameters and uses none

namespace knot::kernels::cuda {
KNOT_DROPOUT_KERNELS(KNOT_CUDA_STUB)
}  // namespace knot::kernels::cuda
