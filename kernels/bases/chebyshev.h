// Chebyshev basis of ChebyKAN: φ_d(x) = T_d(tanh x), d = 0 … D, with T_d(u) = cos(d·acos u) computed
// by the recurrence T_{d+1} = 2u·T_d − T_{d−1} (no acos, exact at u = ±1), and
//   φ_d'(x) = T_d'(u)·(1 − u²),  T_{d+1}' = 2T_d + 2u·T_d' − T_{d−1}'.
#pragma once

#include <math.h>

#include "core/hd.h"

namespace knot::basis {

// phi, dphi: (D+1); dphi may be null.
template <typename T>
KNOT_HD void chebyshev_eval(T x, int D, T* phi, T* dphi) {
  const T u = ::tanh(x), du = T(1) - u * u;
  T t0 = T(1), t1 = u, d0 = T(0), d1 = T(1);
  phi[0] = t0;
  if (dphi) dphi[0] = T(0);
  if (D >= 1) {
    phi[1] = t1;
    if (dphi) dphi[1] = du;
  }
  for (int d = 2; d <= D; ++d) {
    const T t2 = T(2) * u * t1 - t0, d2 = T(2) * t1 + T(2) * u * d1 - d0;
    phi[d] = t2;
    if (dphi) dphi[d] = d2 * du;
    t0 = t1; t1 = t2; d0 = d1; d1 = d2;
  }
}

}  // namespace knot::basis
