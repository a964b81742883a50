// AVX-512 vectors for the local B-spline path (kernels/cpu/spline_local.cpp): one struct per element
// type with the loads, masked loads/stores, FMA and horizontal sum the path's inner loops use, and
// simd_width<T>(), the lanes per vector (1 without AVX-512: the portable loops). Private to kernels/cpu/.
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/spline_common.h"  // first: its <immintrin.h> under GCC 12's warning fix

namespace knot::kernels::cpu::spline_detail {

#ifdef __AVX512F__
template <typename T>
struct Simd;
template <>
struct Simd<float> {
  using V = __m512;
  using M = __mmask16;
  static constexpr int64_t W = 16;
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V mload(M m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static void mstore(float* p, M m, V v) { _mm512_mask_storeu_ps(p, m, v); }
  static V set1(float a) { return _mm512_set1_ps(a); }
  static V zero() { return _mm512_setzero_ps(); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static float sum(V a) { return _mm512_reduce_add_ps(a); }
  static M mask(int64_t n) { return n >= W ? M(0xFFFF) : M((1u << std::max<int64_t>(n, 0)) - 1u); }
};
template <>
struct Simd<double> {
  using V = __m512d;
  using M = __mmask8;
  static constexpr int64_t W = 8;
  static V load(const double* p) { return _mm512_loadu_pd(p); }
  static V mload(M m, const double* p) { return _mm512_maskz_loadu_pd(m, p); }
  static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
  static void mstore(double* p, M m, V v) { _mm512_mask_storeu_pd(p, m, v); }
  static V set1(double a) { return _mm512_set1_pd(a); }
  static V zero() { return _mm512_setzero_pd(); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static double sum(V a) { return _mm512_reduce_add_pd(a); }
  static M mask(int64_t n) { return n >= W ? M(0xFF) : M((1u << std::max<int64_t>(n, 0)) - 1u); }
};
template <typename T>
constexpr int64_t simd_width() { return Simd<T>::W; }
#else
template <typename T>
constexpr int64_t simd_width() { return 1; }
#endif

}  // namespace knot::kernels::cpu::spline_detail
