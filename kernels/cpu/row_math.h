// Vectorised row helpers for the CPU kernels that reduce along a row (layer norm, cross-entropy,
// the attention softmax).
//
// f64 sums over kLanes independent accumulators. A plain `s += x[j]` loop is one dependent chain
// of f64 adds (4 cycles each, never vectorised without -ffast-math); with the lanes written out GCC
// emits vector adds, and the order of the additions is fixed by the row length alone, so results
// stay deterministic and independent of the thread count.
//
// f32 exp rows use Eigen's vectorised exp (the Cephes polynomial: about 1 ulp, clamped at ±88.7, so
// exp(−inf) gives ~1e−38, not 0: callers zero masked entries themselves) instead of one libm call
// per element.
#pragma once

#include <Eigen/Core>

#include <cstdint>

namespace knot::kernels::cpu::rowmath {

constexpr int kLanes = 16;

// Σ_j x_j in f64.
template <typename T>
inline double sum(const T* x, int64_t n) {
  double acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += static_cast<double>(x[j + l]);
  for (int l = 0; j < n; ++j, ++l) acc[l] += static_cast<double>(x[j]);
  double s = 0;
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

// Σ_j (x_j − mu)² in f64.
template <typename T>
inline double sum_sq_dev(const T* x, int64_t n, double mu) {
  double acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const double d = static_cast<double>(x[j + l]) - mu;
      acc[l] += d * d;
    }
  for (int l = 0; j < n; ++j, ++l) {
    const double d = static_cast<double>(x[j]) - mu;
    acc[l] += d * d;
  }
  double s = 0;
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

// Layer-norm backward's two row sums, gh_j = g_j·w_j (w_j = 1 without weight):
//   sum_gh = Σ gh_j,  sum_gh_xhat = Σ gh_j·(x_j − mu)·rstd.
template <typename T>
inline void ln_bwd_sums(const T* g, const T* w, const T* x, int64_t n, double mu, double rstd, double& sum_gh,
                        double& sum_gh_xhat) {
  double a[kLanes] = {}, b[kLanes] = {};
  auto one = [&](int l, int64_t j) {
    const double gh = w ? static_cast<double>(g[j]) * static_cast<double>(w[j]) : static_cast<double>(g[j]);
    a[l] += gh;
    b[l] += gh * ((static_cast<double>(x[j]) - mu) * rstd);
  };
  int64_t j = 0;
  if (w) {
    for (; j + kLanes <= n; j += kLanes)
      for (int l = 0; l < kLanes; ++l) {
        const double gh = static_cast<double>(g[j + l]) * static_cast<double>(w[j + l]);
        a[l] += gh;
        b[l] += gh * ((static_cast<double>(x[j + l]) - mu) * rstd);
      }
  } else {
    for (; j + kLanes <= n; j += kLanes)
      for (int l = 0; l < kLanes; ++l) {
        const double gh = static_cast<double>(g[j + l]);
        a[l] += gh;
        b[l] += gh * ((static_cast<double>(x[j + l]) - mu) * rstd);
      }
  }
  for (int l = 0; j < n; ++j, ++l) one(l, j);
  sum_gh = 0;
  sum_gh_xhat = 0;
  for (int l = 0; l < kLanes; ++l) {
    sum_gh += a[l];
    sum_gh_xhat += b[l];
  }
}

using ArrayF = Eigen::Array<float, Eigen::Dynamic, 1>;
using CMapF = Eigen::Map<const ArrayF>;
using MapF = Eigen::Map<ArrayF>;

// out_j = exp(x_j − shift) for a row of n floats (out may alias x).
inline void exp_shifted(const float* x, float* out, int64_t n, float shift) {
  MapF(out, n) = (CMapF(x, n) - shift).exp();
}

// Σ_j exp(x_j − shift), evaluated and summed in f32 vector lanes.
inline float sum_exp_shifted(const float* x, int64_t n, float shift) {
  return (CMapF(x, n) - shift).exp().sum();
}

inline float max(const float* x, int64_t n) { return CMapF(x, n).maxCoeff(); }

}  // namespace knot::kernels::cpu::rowmath
