// CUDA stub for the elementwise family: compiled when kernels/cuda/elementwise.cu is not.
#include "kernels/elementwise.h"

namespace knot::kernels::cuda {

Tensor unary(UnaryOp op, const Tensor&, double, double) { cuda_unavailable(unary_name(op)); }
Tensor unary_bwd(UnaryOp op, const Tensor&, const Tensor&, const Tensor&, double, double) { cuda_unavailable(unary_name(op)); }
Tensor binary(BinaryOp op, const Tensor&, const Tensor&) { cuda_unavailable(binary_name(op)); }
void copy(const Tensor&, const Tensor&) { cuda_unavailable("copy"); }
void fill(const Tensor&, double) { cuda_unavailable("fill"); }
void axpy(const Tensor&, const Tensor&, double) { cuda_unavailable("add_"); }
void scale(const Tensor&, double) { cuda_unavailable("mul_"); }

}  // namespace knot::kernels::cuda
