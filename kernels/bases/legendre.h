// Legendre basis (the worked example of docs/adding-a-basis.md): φ_d(x) = P_d(tanh x), d = 0 … D,
// by Bonnet's recurrence (d+1)·P_{d+1} = (2d+1)·u·P_d − d·P_{d−1} on u = tanh x (squashed into
// [−1, 1] like ChebyKAN), and for the derivative P'_{d+1} = P'_{d−1} + (2d+1)·P_d, so that
//   φ_d'(x) = P_d'(u)·(1 − u²).
#pragma once

#include <math.h>

#include "core/hd.h"

namespace knot::basis {

// phi, dphi: (D+1); dphi may be null.
template <typename T>
KNOT_HD void legendre_eval(T x, int D, T* phi, T* dphi) {
  const T u = ::tanh(x), du = T(1) - u * u;
  T p0 = T(1), p1 = u, d0 = T(0), d1 = T(1);
  phi[0] = p0;
  if (dphi) dphi[0] = T(0);
  if (D >= 1) {
    phi[1] = p1;
    if (dphi) dphi[1] = du;
  }
  for (int d = 1; d < D; ++d) {
    const T p2 = (T(2 * d + 1) * u * p1 - T(d) * p0) / T(d + 1);
    const T d2 = d0 + T(2 * d + 1) * p1;
    phi[d + 1] = p2;
    if (dphi) dphi[d + 1] = d2 * du;
    p0 = p1; p1 = p2; d0 = d1; d1 = d2;
  }
}

}  // namespace knot::basis
