// Softmax family along one dim, on the (outer, n, inner) split of the shape (kernels/reduce.h):
//   softmax      y_j = exp(x_j − lse),   backward gx = y ⊙ (g − Σ_j g_j y_j)
//   log_softmax  y_j = x_j − lse,        backward gx = g − exp(y) · Σ_j g_j
//   logsumexp    lse = m + log Σ_j exp(x_j − m), m = max_j x_j (online, one pass: kernels/nn_math.h)
// Outputs are contiguous; f32 row sums accumulate in f64.
#pragma once

#include "kernels/dispatch.h"
#include "kernels/reduce.h"

namespace knot::kernels {

#define KNOT_SOFTMAX_KERNELS(X)                                                                                 \
  /* x: any shape (float) -> y: x's shape; softmax or (log_space) log_softmax along dim */                      \
  X(Tensor, softmax_fwd, (const Tensor& x, int dim, bool log_space))                                            \
  /* y: the forward output, g: dL/dy (both x's shape) -> gx: x's shape */                                       \
  X(Tensor, softmax_bwd, (const Tensor& y, const Tensor& g, int dim, bool log_space))                           \
  /* x: any shape (float) -> lse: x's shape with dim set to 1 */                                                \
  X(Tensor, logsumexp, (const Tensor& x, int dim))

namespace cpu { KNOT_SOFTMAX_KERNELS(KNOT_DECLARE_KERNEL) }
namespace cuda { KNOT_SOFTMAX_KERNELS(KNOT_DECLARE_KERNEL) }

inline Tensor softmax_fwd(const Tensor& x, int dim, bool log_space) { return KNOT_DISPATCH(x, softmax_fwd(x, dim, log_space)); }
inline Tensor softmax_bwd(const Tensor& y, const Tensor& g, int dim, bool log_space) {
  check_same_device(log_space ? "log_softmax" : "softmax", y, g);
  return KNOT_DISPATCH(y, softmax_bwd(y, g, dim, log_space));
}
inline Tensor logsumexp(const Tensor& x, int dim) { return KNOT_DISPATCH(x, logsumexp(x, dim)); }

}  // namespace knot::kernels
