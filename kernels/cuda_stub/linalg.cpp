// CUDA stub for the GEMM family: compiled when kernels/cuda/linalg.cu is not.
#include "kernels/linalg.h"

namespace knot::kernels::cuda {

Tensor matmul(const Tensor&, const Tensor&, bool, bool) { cuda_unavailable("matmul"); }

}  // namespace knot::kernels::cuda
