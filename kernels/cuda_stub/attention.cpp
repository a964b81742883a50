// CUDA stubs of the attention family, compiled when kernels/cuda/attention.cu is not: each kernel of the
// family's list (kernels/attention.h) throws "<kernel>: CUDA ..." (kernels/dispatch.h).
#include "kernels/attention.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"  // a stub names its parameters and uses none

namespace knot::kernels::cuda {
KNOT_ATTENTION_KERNELS(KNOT_CUDA_STUB)
}  // namespace knot::kernels::cuda
