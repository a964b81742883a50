// GEMM kernels. a: (..., M, K) [or (..., K, M) if trans_a], b: (..., K, N) [or (..., N, K) if
// trans_b], both at least 2-D with broadcasting batch dims -> out (..., M, N) contiguous.
// Any strides are accepted: transposed views are read in place, not copied.
#pragma once

#include "kernels/dispatch.h"

namespace knot::kernels {

#define KNOT_LINALG_KERNELS \
  Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b);

namespace cpu { KNOT_LINALG_KERNELS }
namespace cuda { KNOT_LINALG_KERNELS }

inline Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  check_same_device("matmul", a, b);
  check_same_dtype("matmul", a, b);
  return KNOT_DISPATCH(a, matmul(a, b, trans_a, trans_b));
}

}  // namespace knot::kernels
