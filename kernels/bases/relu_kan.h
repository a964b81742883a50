// ReLU-KAN basis: φ_j(x) = [ReLU(e_j − x)·ReLU(x − s_j)]²·16/(e_j − s_j)⁴ on the interval [s_j, e_j]
// (phase_low s, phase_height e), a bump of height 1 at the midpoint; zero outside.
//   φ_j'(x) = 2·a·b·(a − b)·16/(e_j − s_j)⁴ with a = ReLU(e_j − x), b = ReLU(x − s_j).
// The layer (nn/bases/relu.cpp) trains s and e, so it is built from primitive ops; this is the
// per-element form for a fused kernel.
#pragma once

#include "core/hd.h"

namespace knot::basis {

template <typename T>
KNOT_HD T relu_kan_value(T x, T s, T e, T* deriv) {
  const T a = e - x > T(0) ? e - x : T(0), b = x - s > T(0) ? x - s : T(0);
  const T w = e - s, r = T(16) / (w * w * w * w);
  if (deriv) *deriv = T(2) * a * b * (a - b) * r;
  return a * a * b * b * r;
}

}  // namespace knot::basis
