// Layer norm over the last n elements of each row (x seen as (M, n)), Ba et al. 2016:
//   y = (x − mean) · rstd · w + b,   rstd = 1 / sqrt(var + eps)   (biased var)
// Forward saves only mean and rstd per row (M values each, x's dtype); backward recomputes
// xhat = (x − mean) · rstd from x:
//   dx = rstd · (gh − mean(gh) − xhat · mean(gh ⊙ xhat)),  gh = g ⊙ w
//   dw = Σ_rows g ⊙ xhat,   db = Σ_rows g
#pragma once

#include "kernels/dispatch.h"

namespace knot::kernels {

struct LayerNormFwd {
  Tensor y;     // x's shape, contiguous
  Tensor mean;  // (M)
  Tensor rstd;  // (M)
};

struct LayerNormBwd {
  Tensor dx;       // x's shape (undefined unless asked for)
  Tensor dweight;  // (n)
  Tensor dbias;    // (n)
};

#define KNOT_NORM_KERNELS(X)                                                                                    \
  /* x: (M, n) as any shape with numel M·n; weight, bias: n elements or undefined */                            \
  X(LayerNormFwd, layer_norm_fwd, (const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t n,        \
                                   double eps))                                                                 \
  /* g, x: (M, n); weight: n elements or undefined; mean, rstd: (M) */                                          \
  X(LayerNormBwd, layer_norm_bwd, (const Tensor& g, const Tensor& x, const Tensor& weight, const Tensor& mean,  \
                                   const Tensor& rstd, int64_t n, bool need_dx, bool need_dweight,              \
                                   bool need_dbias))

namespace cpu { KNOT_NORM_KERNELS(KNOT_DECLARE_KERNEL) }
namespace cuda { KNOT_NORM_KERNELS(KNOT_DECLARE_KERNEL) }

inline LayerNormFwd layer_norm_fwd(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t n, double eps) {
  return KNOT_DISPATCH(x, layer_norm_fwd(x, weight, bias, n, eps));
}
inline LayerNormBwd layer_norm_bwd(const Tensor& g, const Tensor& x, const Tensor& weight, const Tensor& mean,
                                   const Tensor& rstd, int64_t n, bool need_dx, bool need_dweight, bool need_dbias) {
  return KNOT_DISPATCH(x, layer_norm_bwd(g, x, weight, mean, rstd, n, need_dx, need_dweight, need_dbias));
}

}  // namespace knot::kernels
