// Shared dispatch helpers (see dispatch.h).
#include "kernels/dispatch.h"

namespace knot::kernels {

void cuda_unavailable(const char* op) {
#ifdef KNOT_HAS_CUDA
  KNOT_FAIL("{}: no CUDA kernel for this op yet (the CUDA backend is compiled in, this op is not)", op);
#else
  KNOT_FAIL("{}: CUDA backend not compiled in (configure with -DKNOT_CUDA=ON on a machine with nvcc)", op);
#endif
}

void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  KNOT_CHECK(a.device() == b.device(), "{}: inputs are on different devices ({} and {}); move one with .to()", op,
             a.device().str(), b.device().str());
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  KNOT_CHECK(a.dtype() == b.dtype(), "{}: dtypes differ ({} and {}); convert one with .to(dtype)", op,
             dtype_name(a.dtype()), dtype_name(b.dtype()));
}

}  // namespace knot::kernels
