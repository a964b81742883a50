// CUDA stub for the optimizer family: compiled when kernels/cuda/optim.cu is not.
#include "kernels/optim.h"

namespace knot::kernels::cuda {

void adam_step(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const AdamHyper&) { cuda_unavailable("adam_step"); }
void sgd_step(const Tensor&, const Tensor&, const Tensor&, double, double, double, bool) { cuda_unavailable("sgd_step"); }

}  // namespace knot::kernels::cuda
