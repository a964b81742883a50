// CUDA stubs of the linalg family, compiled when kernels/cuda/linalg.cu is not: each kernel of the
// family's list (kernels/linalg.h) throws "<kernel>: CUDA ..." (kernels/dispatch.h).
#include "kernels/linalg.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"  // a stub names its parameters and uses none

namespace knot::kernels::cuda {
KNOT_LINALG_KERNELS(KNOT_CUDA_STUB)
}  // namespace knot::kernels::cuda
