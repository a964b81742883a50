// CUDA stubs of the reduce family, compiled when kernels/cuda/reduce.cu is not: each kernel of the
// family's list (kernels/reduce.h) throws "<kernel>: CUDA ..." (kernels/dispatch.h).
#include "kernels/reduce.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"  // a stub names its parameters and uses none

namespace knot::kernels::cuda {
KNOT_REDUCE_KERNELS(KNOT_CUDA_STUB)
}  // namespace knot::kernels::cuda
