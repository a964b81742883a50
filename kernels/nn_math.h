// Per-row math of the fused nn kernels, shared by the CPU loops and the CUDA kernels (KNOT_HD):
//   - online max / Σexp (Milakov & Gimelshein, "Online normalizer calculation for softmax", 2018):
//     one pass keeps (m, s) with s = Σ exp(x_i − m); logsumexp = m + log s.
//   - the layer-norm input gradient of one element, given its row sums.
//   - the label-smoothed cross-entropy of one row and its gradient per logit.
// Acc is the accumulator type: double for f32 data on the CPU, so long rows lose no precision.
#pragma once

#include <math.h>

#include "core/hd.h"

namespace knot::math {

// Running max m and s = Σ exp(x_i − m). Start from m = −inf, s = 0.
template <typename Acc>
struct OnlineLse {
  Acc m = -INFINITY;
  Acc s = 0;
};

template <typename Acc>
KNOT_HD void online_lse_add(OnlineLse<Acc>& st, Acc x) {
  if (x > st.m) {
    // Rescale the old sum to the new max; an old max of −inf means an old sum of 0.
    st.s = st.m == -INFINITY ? Acc(1) : st.s * ::exp(st.m - x) + Acc(1);
    st.m = x;
  } else if (x == st.m) {
    st.s += Acc(1);  // also repeats of ±inf, where exp(x − m) would be exp(NaN)
  } else if (x == x) {
    st.s += ::exp(x - st.m);
  } else {
    st.m = x;  // NaN poisons the row, as in PyTorch
    st.s = x;
  }
}

// Merges two partial states (for tree reductions across threads / warps).
template <typename Acc>
KNOT_HD OnlineLse<Acc> online_lse_merge(OnlineLse<Acc> a, OnlineLse<Acc> b) {
  if (a.m == -INFINITY) return b;
  if (b.m == -INFINITY) return a;
  if (a.m == b.m) return {a.m, a.s + b.s};
  const Acc m = a.m > b.m ? a.m : b.m;
  return {m, a.s * ::exp(a.m - m) + b.s * ::exp(b.m - m)};
}

// log Σ exp(x_i); −inf for an empty or all −inf row.
template <typename Acc>
KNOT_HD Acc online_lse_result(const OnlineLse<Acc>& st) {
  if (st.m == -INFINITY) return st.m;
  return st.m + ::log(st.s);
}

// Layer-norm backward for one element, given the row sums over the normalised dims:
//   xhat = (x − mean)·rstd, gh = g·w,
//   dx = rstd · (gh − mean(gh) − xhat · mean(gh ⊙ xhat)).
template <typename Acc>
KNOT_HD Acc layer_norm_dx(Acc gh, Acc xhat, Acc rstd, Acc mean_gh, Acc mean_gh_xhat) {
  return rstd * (gh - mean_gh - xhat * mean_gh_xhat);
}

// Loss of one row with logsumexp `lse`, target logit x_t and mean logit x̄ (label smoothing ε):
//   (1−ε)·(lse − x_t) + ε·mean_c(lse − x_c) = lse − (1−ε)·x_t − ε·x̄.
// Without smoothing the x̄ term is left out rather than multiplied by 0: a −inf logit (a masked
// class) makes x̄ = −inf, and 0·(−inf) would turn a finite loss into NaN.
template <typename Acc>
KNOT_HD Acc cross_entropy_row(Acc lse, Acc x_target, Acc x_mean, Acc eps) {
  const Acc smooth = eps != Acc(0) ? eps * x_mean : Acc(0);
  return lse - (Acc(1) - eps) * x_target - smooth;
}

// d loss / d x_c = softmax_c − q_c with the smoothed target q_c = (1−ε)·[c = t] + ε/C.
template <typename Acc>
KNOT_HD Acc cross_entropy_grad(Acc x, Acc lse, bool is_target, Acc eps, Acc inv_classes) {
  const Acc q = (is_target ? Acc(1) - eps : Acc(0)) + eps * inv_classes;
  return ::exp(x - lse) - q;
}

}  // namespace knot::math
