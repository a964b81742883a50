// Fourier basis of FourierKAN: φ = [cos(1·x) … cos(G·x), sin(1·x) … sin(G·x)] (2G functions),
// φ' = [−k·sin(kx) …, k·cos(kx) …]. cos/sin of kx by the angle-addition recurrence from cos x, sin x.
#pragma once

#include <math.h>

#include "core/hd.h"

namespace knot::basis {

// phi, dphi: (2G); dphi may be null.
template <typename T>
KNOT_HD void fourier_eval(T x, int G, T* phi, T* dphi) {
  const T c1 = ::cos(x), s1 = ::sin(x);
  T c = c1, s = s1;
  for (int k = 1; k <= G; ++k) {
    phi[k - 1] = c;
    phi[G + k - 1] = s;
    if (dphi) {
      dphi[k - 1] = -T(k) * s;
      dphi[G + k - 1] = T(k) * c;
    }
    const T cn = c * c1 - s * s1, sn = s * c1 + c * s1;
    c = cn;
    s = sn;
  }
}

}  // namespace knot::basis
