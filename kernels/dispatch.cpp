// Shared dispatch helpers (see dispatch.h).
#include "kernels/dispatch.h"

#include "kernels/elementwise.h"

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

Tensor dense(const Tensor& t) {
  if (t.is_contiguous()) return t;
  Tensor out = empty(t.shape(), t.dtype(), t.device());
  copy(out, t);  // the device's strided copy kernel
  return out;
}

Tensor permuted(const Tensor& t, const std::vector<int64_t>& order) {
  KNOT_CHECK(static_cast<int64_t>(order.size()) == t.dim(), "permuted: order has {} dims, tensor {} has {}",
             order.size(), shape_str(t.shape()), t.dim());
  Shape shape(order.size()), strides(order.size());
  std::vector<bool> seen(order.size(), false);
  for (size_t i = 0; i < order.size(); ++i) {
    const int64_t d = order[i];
    KNOT_CHECK(d >= 0 && d < t.dim() && !seen[static_cast<size_t>(d)], "permuted: {} is not a permutation of {} dims",
               fmt::join(order, ", "), t.dim());
    seen[static_cast<size_t>(d)] = true;
    shape[i] = t.shape()[static_cast<size_t>(d)];
    strides[i] = t.strides()[static_cast<size_t>(d)];
  }
  return make_view(t, shape, strides, t.offset());
}

}  // namespace knot::kernels
