// GEMM kernels. a: (..., M, K) [or (..., K, M) if trans_a], b: (..., K, N) [or (..., N, K) if
// trans_b], both at least 2-D with broadcasting batch dims -> out (..., M, N) contiguous.
// Any strides are accepted: transposed views are read in place, not copied.
#pragma once

#include "core/runtime.h"  // MatmulPrecision: the setting the CPU GEMMs read
#include "kernels/dispatch.h"

namespace knot::kernels {

// The shape of a (batched) GEMM, checked once for every backend: the kernel-level checks and the
// batch broadcasting rules live here, the backends only multiply.
struct GemmShape {
  int64_t M = 0, N = 0, K = 0;
  Shape batch;          // broadcast batch dims
  Shape out_shape;      // batch + (M, N)
  int64_t batches = 1;  // numel(batch)
};
GemmShape gemm_shape(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b);
// Strides of t's batch dims aligned to `batch` (0 where t broadcasts).
Shape gemm_batch_strides(const Tensor& t, const Shape& batch);
// Element offset of flat (row-major) batch index i.
int64_t gemm_batch_offset(int64_t i, const Shape& batch, const Shape& strides);

#define KNOT_LINALG_KERNELS(X)                                                                                  \
  X(Tensor, matmul, (const Tensor& a, const Tensor& b, bool trans_a, bool trans_b))

namespace cpu { KNOT_LINALG_KERNELS(KNOT_DECLARE_KERNEL) }
namespace cuda { KNOT_LINALG_KERNELS(KNOT_DECLARE_KERNEL) }

inline Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  check_same_device("matmul", a, b);
  check_same_dtype("matmul", a, b);
  return KNOT_DISPATCH(a, matmul(a, b, trans_a, trans_b));
}

// Host-only (kernels/cpu/lstsq.cpp), f64: F independent least-squares problems. a: (F, N, K),
// y: (F, N, M), both contiguous f64 on the host -> x: (F, K, M), each x_f the minimum-norm minimiser of
// ‖a_f·x_f − y_f‖ (complete orthogonal decomposition: rank-deficient and underdetermined a_f are fine).
Tensor lstsq(const Tensor& a, const Tensor& y);

}  // namespace knot::kernels
