// CUDA stubs of the spline family, compiled when kernels/cuda/spline.cu is not: each kernel of the
// family's list (kernels/spline.h) throws "<kernel>: CUDA ..." (kernels/dispatch.h).
#include "kernels/spline.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"  // a stub names its parameters and uses none

namespace knot::kernels::cuda {
KNOT_SPLINE_KERNELS(KNOT_CUDA_STUB)
}  // namespace knot::kernels::cuda
