// Cross-entropy fused with log-softmax, on logits seen as (M, C) rows and integer targets (M):
//   loss_r = lse_r − (1−ε)·x_{r,t_r} − ε·mean_c x_{r,c}        (= (1−ε)·nll + ε·mean_c(−logp_c))
//   dlogits_{r,c} = w_r · (softmax_{r,c} − (1−ε)·[c = t_r] − ε/C)
// Rows whose target is ignore_index give loss 0 and gradient 0. Forward saves only lse (M).
#pragma once

#include "kernels/dispatch.h"

namespace knot::kernels {

struct CrossEntropyFwd {
  Tensor loss;        // (M), logits' dtype; 0 on ignored rows
  Tensor lse;         // (M), logits' dtype
  int64_t count = 0;  // rows whose target is not ignore_index
};

#define KNOT_LOSS_KERNELS(X)                                                                                    \
  /* logits: (M, C) as any shape with numel M·C; target: M i32/i64 values in [0, C) or ignore_index */          \
  X(CrossEntropyFwd, cross_entropy_fwd, (const Tensor& logits, const Tensor& target, int64_t classes,           \
                                         int64_t ignore_index, double label_smoothing))                         \
  /* row_grad: (M) dL/dloss_r; lse: (M) -> dlogits: logits' shape */                                            \
  X(Tensor, cross_entropy_bwd, (const Tensor& logits, const Tensor& target, const Tensor& lse,                  \
                                const Tensor& row_grad, int64_t classes, int64_t ignore_index,                  \
                                double label_smoothing))

namespace cpu { KNOT_LOSS_KERNELS(KNOT_DECLARE_KERNEL) }
namespace cuda { KNOT_LOSS_KERNELS(KNOT_DECLARE_KERNEL) }

inline CrossEntropyFwd cross_entropy_fwd(const Tensor& logits, const Tensor& target, int64_t classes,
                                         int64_t ignore_index, double label_smoothing) {
  check_same_device("cross_entropy", logits, target);
  return KNOT_DISPATCH(logits, cross_entropy_fwd(logits, target, classes, ignore_index, label_smoothing));
}
inline Tensor cross_entropy_bwd(const Tensor& logits, const Tensor& target, const Tensor& lse, const Tensor& row_grad,
                                int64_t classes, int64_t ignore_index, double label_smoothing) {
  return KNOT_DISPATCH(logits,
                       cross_entropy_bwd(logits, target, lse, row_grad, classes, ignore_index, label_smoothing));
}

}  // namespace knot::kernels
