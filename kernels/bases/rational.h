// Group-rational unit of KAT (GR-KAN): f(x) = P(x)/(1 + |Q(x)|), P(x) = Σ_{i=0..5} a_i xⁱ,
// Q(x) = Σ_{j=1..4} b_j xʲ (no constant term); coefficients shared by a group of channels.
//   f'(x) = P'(x)/(1+|Q|) − P(x)·sign(Q)·Q'(x)/(1+|Q|)²
// The layer (nn/bases/rational.cpp) trains a and b, so it is built from primitive ops; this is the
// per-element form for a fused kernel.
#pragma once

#include "core/hd.h"

namespace knot::basis {

// a: (6) numerator, b: (4) denominator b_1 … b_4.
template <typename T>
KNOT_HD T rational_value(T x, const T* a, const T* b, T* deriv) {
  T P = a[5], dP = T(0);
  for (int i = 4; i >= 0; --i) {
    dP = dP * x + P;
    P = P * x + a[i];
  }
  T Q = b[3], dQ = T(0);
  for (int j = 2; j >= 0; --j) {
    dQ = dQ * x + Q;
    Q = Q * x + b[j];
  }
  dQ = dQ * x + Q;  // Q(x) = x·(b_1 + b_2 x + …)
  Q = Q * x;
  const T aq = Q < T(0) ? -Q : Q, sq = Q > T(0) ? T(1) : (Q < T(0) ? T(-1) : T(0));
  const T den = T(1) + aq;
  if (deriv) *deriv = dP / den - P * sq * dQ / (den * den);
  return P / den;
}

}  // namespace knot::basis
