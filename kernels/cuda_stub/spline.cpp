// CUDA stub for the KAN kernels (kernels/spline.h): compiled when kernels/cuda/spline.cu is not.
#include "kernels/spline.h"

namespace knot::kernels::cuda {

Tensor bspline_basis(const Tensor&, const Tensor&, int, bool) { cuda_unavailable("bspline_basis"); }
Tensor kan_bspline_fwd(const Tensor&, const Tensor&, const Tensor&, const Tensor&, int, SplinePath) {
  cuda_unavailable("kan_bspline");
}
SplineGrads kan_bspline_bwd(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, int, SplinePath,
                            bool, bool, bool) {
  cuda_unavailable("kan_bspline backward");
}
Tensor kan_basis_fwd(const Tensor&, const Tensor&, const BasisEval&) { cuda_unavailable("kan_basis"); }
std::array<Tensor, 2> kan_basis_bwd(const Tensor&, const Tensor&, const Tensor&, const BasisEval&, bool, bool) {
  cuda_unavailable("kan_basis backward");
}

}  // namespace knot::kernels::cuda
