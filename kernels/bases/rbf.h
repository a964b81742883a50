// Gaussian radial basis of FastKAN: φ_j(x) = exp(−((x − g_j)/h)²), j = 0 … J−1 (grid g, width h);
// φ_j'(x) = −2(x − g_j)/h² · φ_j(x).
#pragma once

#include <math.h>

#include "core/hd.h"

namespace knot::basis {

// grid: (J); phi, dphi: (J); dphi may be null.
template <typename T>
KNOT_HD void rbf_eval(T x, const T* grid, int J, T inv_h, T* phi, T* dphi) {
  for (int j = 0; j < J; ++j) {
    const T z = (x - grid[j]) * inv_h;
    const T v = ::exp(-z * z);
    phi[j] = v;
    if (dphi) dphi[j] = T(-2) * z * inv_h * v;
  }
}

}  // namespace knot::basis
