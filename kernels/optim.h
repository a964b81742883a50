// Fused optimizer updates: one pass over each parameter tensor, reading its gradient and state.
// The per-element rules are KNOT_HD so the CUDA kernels share them.
#pragma once

#include <math.h>

#include "core/hd.h"
#include "kernels/dispatch.h"

namespace knot {

struct AdamHyper {
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled;  // AdamW: decay the weights directly; Adam: add wd·p to the gradient
  int64_t step;    // 1-based, for bias correction
};

// One Adam/AdamW element update; bc1 = 1 − β1^t, bc2 = 1 − β2^t.
template <typename T>
KNOT_HD void adam_update(T& p, T g, T& m, T& v, T lr, T b1, T b2, T eps, T wd, bool decoupled, T bc1, T bc2) {
  if (decoupled) p -= lr * wd * p;
  else g += wd * p;
  m = b1 * m + (T(1) - b1) * g;
  v = b2 * v + (T(1) - b2) * g * g;
  const T mhat = m / bc1, vhat = v / bc2;
  p -= lr * mhat / (::sqrt(vhat) + eps);
}

namespace kernels {

#define KNOT_OPTIM_KERNELS(X)                                                                                   \
  /* p, g, m, v: same shape, contiguous; updates p, m, v in place */                                            \
  X(void, adam_step, (const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v, const AdamHyper& h))  \
  /* buf may be undefined when momentum == 0 */                                                                 \
  X(void, sgd_step, (const Tensor& p, const Tensor& g, const Tensor& buf, double lr, double momentum,           \
                     double weight_decay, bool nesterov))

namespace cpu { KNOT_OPTIM_KERNELS(KNOT_DECLARE_KERNEL) }
namespace cuda { KNOT_OPTIM_KERNELS(KNOT_DECLARE_KERNEL) }

inline void adam_step(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v, const AdamHyper& h) {
  check_same_device("adam_step", p, g);
  KNOT_DISPATCH(p, adam_step(p, g, m, v, h));
}
inline void sgd_step(const Tensor& p, const Tensor& g, const Tensor& buf, double lr, double momentum, double wd,
                     bool nesterov) {
  check_same_device("sgd_step", p, g);
  KNOT_DISPATCH(p, sgd_step(p, g, buf, lr, momentum, wd, nesterov));
}

}  // namespace kernels
}  // namespace knot
