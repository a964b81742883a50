// B-spline basis of order k on one feature's knot vector t (nk = G+2k+1 knots), by Cox–de Boor:
//   B⁰_j(x) = 1[t_j ≤ x < t_{j+1}]
//   Bᵖ_j(x) = (x−t_j)/(t_{j+p}−t_j)·Bᵖ⁻¹_j(x) + (t_{j+p+1}−x)/(t_{j+p+1}−t_{j+1})·Bᵖ⁻¹_{j+1}(x)
//   d/dx Bᵏ_j = k·(Bᵏ⁻¹_j/(t_{j+k}−t_j) − Bᵏ⁻¹_{j+1}/(t_{j+k+1}−t_{j+1}))
// There are nk−k−1 = G+k functions j = 0 … G+k−1, all zero outside [t_0, t_{nk−1}).
//
// Only the k+1 functions j = s−k … s can be non-zero on the knot span s (t_s ≤ x < t_{s+1}), so a
// point costs one binary search plus O(k²) flops and no allocation: the triangular scheme below
// keeps the k+1 values of one recursion level in registers and overwrites them in place.
// A zero denominator (repeated knots after a grid update) makes its term 0, the usual convention.
//
// KNOT_HD: called by the CPU loops (kernels/cpu/spline.cpp), the tests, and later the CUDA kernels.
#pragma once

#include "core/hd.h"

namespace knot::basis {

constexpr int kMaxSplineOrder = 8;

// The span s with t[s] ≤ x < t[s+1], 0 ≤ s ≤ nk−2; −1 when x is outside [t_0, t_{nk−1}) or NaN.
// t: (nk) ascending knots of one feature.
template <typename T>
KNOT_HD int bspline_span(T x, const T* t, int nk) {
  if (!(x >= t[0]) || !(x < t[nk - 1])) return -1;
  // Branch-free binary search (a conditional move per step): the answer stays in [lo, lo+n).
  int lo = 0, n = nk - 1;
  while (n > 1) {
    const int half = n >> 1;
    lo = (t[lo + half] <= x) ? lo + half : lo;
    n -= half;
  }
  return lo;
}

// Given the span s ≥ 0 of x: N[r] = Bᵏ_{s−k+r}(x) for r = 0 … k, and dN[r] = d/dx of it when dN is
// not null. Entries whose index j = s−k+r falls outside 0 … nk−k−2 are 0 (there is no such function).
// t: (nk) knots;  N, dN: (k+1) each, k ≤ kMaxSplineOrder.
template <typename T>
KNOT_HD void bspline_local(T x, const T* t, int nk, int k, int s, T* N, T* dN) {
  N[0] = T(1);
  if (dN && k == 0) dN[0] = T(0);
  for (int p = 1; p <= k; ++p) {
    // N[r'] holds Bᵖ⁻¹_{s−p+1+r'}, r' = 0 … p−1. Bᵖ_j (j = s−p+r) needs Bᵖ⁻¹_j = N[r−1] and
    // Bᵖ⁻¹_{j+1} = N[r]; going down in r reads each old value before it is overwritten.
    for (int r = p; r >= 0; --r) {
      const int j = s - p + r;
      T v = T(0), dv = T(0);
      if (j >= 0 && j + p + 1 <= nk - 1) {
        if (r >= 1) {
          const T d = t[j + p] - t[j];
          if (d != T(0)) {
            v += (x - t[j]) / d * N[r - 1];
            dv += N[r - 1] / d;
          }
        }
        if (r <= p - 1) {
          const T d = t[j + p + 1] - t[j + 1];
          if (d != T(0)) {
            v += (t[j + p + 1] - x) / d * N[r];
            dv -= N[r] / d;
          }
        }
      }
      if (p == k && dN) dN[r] = T(k) * dv;
      N[r] = v;
    }
  }
}

// The kernels' version of bspline_local: the same recursion with the reciprocals of the knot
// differences precomputed once per feature, so a point costs multiplies only (divisions dominate
// otherwise). inv: (k, nk) with inv[(p−1)·nk + j] = 1/(t_{j+p} − t_j), or 0 where that is 0 or j+p ≥ nk.
template <typename T>
KNOT_HD void bspline_inv_denoms(const T* t, int nk, int k, T* inv) {
  for (int p = 1; p <= k; ++p)
    for (int j = 0; j < nk; ++j) {
      const T d = j + p < nk ? t[j + p] - t[j] : T(0);
      inv[(p - 1) * nk + j] = d != T(0) ? T(1) / d : T(0);
    }
}

// KS ≥ 0 fixes k at compile time (the loops unroll and N stays in registers: about 2× faster for
// k = 3); KS = −1 reads the runtime k.
template <int KS, typename T>
KNOT_HD void bspline_local_inv(T x, const T* t, const T* inv, int nk, int k_runtime, int s, T* N, T* dN) {
  const int k = KS >= 0 ? KS : k_runtime;
  N[0] = T(1);
  if (dN && k == 0) dN[0] = T(0);
  for (int p = 1; p <= k; ++p) {
    const T* ip = inv + (p - 1) * nk;
    for (int r = p; r >= 0; --r) {
      const int j = s - p + r;
      T v = T(0), dv = T(0);
      if (j >= 0 && j + p + 1 <= nk - 1) {
        if (r >= 1) {
          const T a = N[r - 1] * ip[j];
          v += (x - t[j]) * a;
          dv += a;
        }
        if (r <= p - 1) {
          const T b = N[r] * ip[j + 1];
          v += (t[j + p + 1] - x) * b;
          dv -= b;
        }
      }
      if (p == k && dN) dN[r] = T(k) * dv;
      N[r] = v;
    }
  }
}

// The same k+1 functions as polynomials on each span: on span s (t_s ≤ x < t_{s+1}), with u = x − t_s,
//   Bᵏ_{s−k+r}(x) = Σ_m poly[(s·(k+1) + r)·(k+1) + m] · uᵐ,   r, m = 0 … k,
// obtained by running the recursion of bspline_local on polynomials in u (x − t_j = u + (t_s − t_j)),
// in the wider type A. Evaluating them is a table look-up plus Horner — no data-dependent control
// flow, so the CPU kernels evaluate a whole column of rows with SIMD (kernels/cpu/spline.cpp).
// Entries with no function (j outside 0 … nk−k−2) and zero-width spans are 0, as in bspline_local.
// t: (nk) knots;  poly: (nk−1, k+1, k+1).
template <typename T, typename A = T>
KNOT_HD void bspline_span_polys(const T* t, int nk, int k, T* poly) {
  const int kk = k + 1;
  for (int s = 0; s + 1 < nk; ++s) {
    A P[kMaxSplineOrder + 1][kMaxSplineOrder + 1];  // P[r][m]: coefficient of uᵐ of function r
    for (int r = 0; r < kk; ++r)
      for (int m = 0; m < kk; ++m) P[r][m] = A(0);
    P[0][0] = A(1);
    const A ts = A(t[s]);
    for (int p = 1; p <= k; ++p) {
      for (int r = p; r >= 0; --r) {
        const int j = s - p + r;
        A v[kMaxSplineOrder + 1];
        for (int m = 0; m < kk; ++m) v[m] = A(0);
        if (j >= 0 && j + p + 1 <= nk - 1) {
          if (r >= 1) {
            const A dd = A(t[j + p]) - A(t[j]);
            if (dd != A(0)) {  // v += (u + (t_s − t_j))/d · P[r−1]
              const A a = A(1) / dd, c = ts - A(t[j]);
              for (int m = kk - 1; m >= 0; --m) v[m] += a * (c * P[r - 1][m] + (m > 0 ? P[r - 1][m - 1] : A(0)));
            }
          }
          if (r <= p - 1) {
            const A dd = A(t[j + p + 1]) - A(t[j + 1]);
            if (dd != A(0)) {  // v += ((t_{j+p+1} − t_s) − u)/d · P[r]
              const A b = A(1) / dd, c = A(t[j + p + 1]) - ts;
              for (int m = kk - 1; m >= 0; --m) v[m] += b * (c * P[r][m] - (m > 0 ? P[r][m - 1] : A(0)));
            }
          }
        }
        for (int m = 0; m < kk; ++m) P[r][m] = v[m];
      }
    }
    T* dst = poly + s * kk * kk;
    for (int r = 0; r < kk; ++r)
      for (int m = 0; m < kk; ++m) dst[r * kk + m] = T(P[r][m]);
  }
}

// All G+k values (and derivatives) of one point, for tests and the dense reference.
// out, dout: (nk−k−1); dout may be null. Returns the span (−1 outside the grid, everything 0).
template <typename T>
KNOT_HD int bspline_all(T x, const T* t, int nk, int k, T* out, T* dout) {
  const int nb = nk - k - 1;
  for (int j = 0; j < nb; ++j) {
    out[j] = T(0);
    if (dout) dout[j] = T(0);
  }
  const int s = bspline_span(x, t, nk);
  if (s < 0) return s;
  T N[kMaxSplineOrder + 1], dN[kMaxSplineOrder + 1];
  bspline_local(x, t, nk, k, s, N, dout ? dN : nullptr);
  for (int r = 0; r <= k; ++r) {
    const int j = s - k + r;
    if (j < 0 || j >= nb) continue;
    out[j] = N[r];
    if (dout) dout[j] = dN[r];
  }
  return s;
}

}  // namespace knot::basis
