// Turns a per-element basis functor into the kernels' BasisEval (kernels/spline.h).
// The functor is called as f(x, feature_index, phi, dphi) for float and double, writes the nf
// values φ_c(x) to phi[0..nf) and, when dphi is not null, φ_c'(x) to dphi[0..nf).
#pragma once

#include "kernels/spline.h"

namespace knot::basis {

template <typename F>
kernels::BasisEval make_basis_eval(int64_t nf, F f) {
  kernels::BasisEval b;
  b.nf = nf;
  auto loop = [f, nf](const auto* x, int64_t rows, int64_t in, auto* phi, auto* dphi) {
    for (int64_t e = 0; e < rows * in; ++e) f(x[e], e % in, phi + e * nf, dphi ? dphi + e * nf : dphi);
  };
  b.f32 = [loop](const float* x, int64_t rows, int64_t in, float* phi, float* dphi) { loop(x, rows, in, phi, dphi); };
  b.f64 = [loop](const double* x, int64_t rows, int64_t in, double* phi, double* dphi) { loop(x, rows, in, phi, dphi); };
  return b;
}

}  // namespace knot::basis
