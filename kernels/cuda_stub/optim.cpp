// CUDA stubs of the optim family, compiled when kernels/cuda/optim.cu is not: each kernel of the
// family's list (kernels/optim.h) throws "<kernel>: CUDA ..." (kernels/dispatch.h).
#include "kernels/optim.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"  // a stub names its parameters and uses none

namespace knot::kernels::cuda {
KNOT_OPTIM_KERNELS(KNOT_CUDA_STUB)
}  // namespace knot::kernels::cuda
