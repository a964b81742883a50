// The local B-spline path of the CPU KAN kernels (see kernels/spline.h and the notes below): per
// (row, feature) the span s and the k+1 non-zero values, computed SIMD across rows; y[n, :] +=
// B_j·coeffᵀ[i, j, :] for those j only (coeff transposed to (in, nb, out) so the rows read are
// contiguous). Forward is parallel over row tiles (a tile of y stays in L2 while the features pass
// over it in blocks whose coefficient rows stay in L1). Backward is parallel over features (each
// thread owns dcoeff[i] and dx[:, i], so there are no atomics) and every sum runs in an order fixed by
// the shapes alone, so the result does not depend on the thread count (tests/test_kan.cpp checks 1, 2
// and 3 threads). The dense path and the public kernels are in kernels/cpu/spline.cpp.
#include "kernels/cpu/spline_common.h"  // first (see there)
#include "kernels/cpu/spline_simd.h"

#include <vector>

#include "kernels/bases/bspline.h"
#include "kernels/cpu/loops.h"

namespace knot::kernels::cpu::spline_detail {
namespace {

// s = silu(x), ds = silu'(x) elementwise over n values, in parallel; either output may be null. The
// same formulas as kernels/math.h (σ(x) = 1/(1+e^−x), silu = x·σ, silu' = σ·(1 + x·(1−σ))) with
// Eigen's SIMD exp: a scalar expf per element was ~8 % of the local path's backward.
template <typename T>
void silu_parallel(const T* x, int64_t n, T* s, T* ds) {
  using Arr = Eigen::Array<T, Eigen::Dynamic, 1>;
  parallel_for(n, 16384, [&](int64_t a, int64_t b) {
    Arr sig;
    for (int64_t c0 = a; c0 < b; c0 += 4096) {
      const int64_t m = std::min<int64_t>(4096, b - c0);
      const Eigen::Map<const Arr> X(x + c0, m);
      sig = (T(1) + (-X).exp()).inverse();
      if (s) Eigen::Map<Arr>(s + c0, m) = X * sig;
      if (ds) Eigen::Map<Arr>(ds + c0, m) = sig * (T(1) + X * (T(1) - sig));
    }
  });
}

// Y = silu(X)·base_wᵀ (overwrites Y).
template <typename T>
void base_fwd(const SplineDims& d, const T* x, const T* base_w, T* y) {
  Scratch<T> S(static_cast<size_t>(d.N * d.in));
  // One pool job: each block of rows takes silu of its x rows, then its GEMM rows.
  parallel_gemm_rows(d.N, d.out, d.in, [&](int64_t r0, int64_t r1) {
    const int64_t m = r1 - r0;
    silu_parallel(x + r0 * d.in, m * d.in, S.data() + r0 * d.in, static_cast<T*>(nullptr));
    Map<T>(y + r0 * d.out, m, d.out).noalias() =
        CMap<T>(S.data() + r0 * d.in, m, d.in) * CMap<T>(base_w, d.out, d.in).transpose();
  });
}

// ---- local path -------------------------------------------------------------------------------
//
// Per block of rows (up to kSubRows) and block of features, two passes:
//   1. basis (local_basis): each feature's spans and k+1 non-zero values (and derivatives), SIMD
//      across rows: the span by counting the knots ≤ x, the values by Horner from per-span
//      polynomial tables (basis::bspline_span_polys) that the lanes index with a permute or gather;
//   2. multiply-add (local_fwd_rows, local_bwd_rows): see there. With AVX-512 these keep a chunk of
//      the out axis in registers (intrinsics, f32 and f64); otherwise plain loops the compiler
//      vectorises (KNOT_PORTABLE builds).
// The coefficients are transposed and padded to Wp (in, nb+2k, outp): Wp[i, j+k, :] = coeff[:, i, j],
// k zero rows on either side and the rows padded to a whole number of SIMD vectors, so the rows
// s … s+k of span s always exist (functions with no index read zeros) and a point outside the grid
// is span 0 with values 0 — no branches in pass 2.
// Napkin math (N = 4096, in = out = 256, k = 3, f32, one core of the 2-core AVX-512 machine of
// docs/benchmarks.md): pass 2 streams (k+1)·out/16 = 64 vector FMAs with a memory operand per
// (row, feature) in forward and twice that in backward; this core sustains ≈ 4 G of those per
// second from L1 (measured), so ≈ 16 ns + 32 ns per (row, feature), ≈ 17 + 34 ms for the 1 M
// pairs — the kernels run within about 20 % of that.

// fn(i, i+1) for every task i in [0, n), handed out one at a time on the thread pool: when another
// process holds a core, the running threads take a descheduled thread's tasks instead of waiting
// for it at the end. Tasks write disjoint outputs, so results do not depend on which thread runs
// which task.
template <typename F>
void parallel_dynamic(int64_t n, F&& fn) {
  if (n <= 1 || num_threads() == 1 || in_parallel_region()) {
    if (n > 0) fn(int64_t{0}, n);
    return;
  }
  parallel_chunks(n, [&](int64_t i) { fn(i, i + 1); });
}

constexpr int64_t kSubRows = 64;  // rows per basis pass (its scratch stays in L1)

template <typename T>
struct LocalLayout {
  int64_t nbp, outp;  // padded rows per feature, padded row length
};



template <typename T>
LocalLayout<T> local_layout(const SplineDims& d) {
  const int64_t W = simd_width<T>();
  return {d.nb + 2 * d.k, (d.out + W - 1) / W * W};
}

// coeff[:, i, :] (coeff: (out, in, nb)) -> slab (nbp, outp) of Wp, zero padded (see above). Blocks of
// 16 outputs, so the strided side of the transpose touches few cache lines at a time.
template <typename T>
void pad_feature(const SplineDims& d, const LocalLayout<T>& L, const T* coeff, int64_t i, T* slab) {
  std::fill(slab, slab + d.k * L.outp, T(0));
  std::fill(slab + (d.nb + d.k) * L.outp, slab + L.nbp * L.outp, T(0));
  for (int64_t o0 = 0; o0 < d.out; o0 += 16) {
    const int64_t o1 = std::min(d.out, o0 + 16);
    for (int64_t j = 0; j < d.nb; ++j) {
      T* row = slab + (j + d.k) * L.outp;
      for (int64_t o = o0; o < o1; ++o) row[o] = coeff[(o * d.in + i) * d.nb + j];
    }
  }
  for (int64_t j = 0; j < d.nb; ++j) std::fill(slab + (j + d.k) * L.outp + d.out, slab + (j + d.k + 1) * L.outp, T(0));
}

// The inverse for dcoeff: slab (nbp, outp) of dWp -> dcoeff[:, i, :].
template <typename T>
void unpad_feature(const SplineDims& d, const LocalLayout<T>& L, const T* slab, int64_t i, T* dcoeff) {
  for (int64_t o0 = 0; o0 < d.out; o0 += 16) {
    const int64_t o1 = std::min(d.out, o0 + 16);
    for (int64_t o = o0; o < o1; ++o)
      for (int64_t j = 0; j < d.nb; ++j) dcoeff[(o * d.in + i) * d.nb + j] = slab[(j + d.k) * L.outp + o];
  }
}

// Per-span look-up tables of every feature, a column per span so that SIMD lanes can pick their
// span's entry with one permute: (in, (k+1)²+1, SP), SP = nk−1 rounded up to 16, with
//   tab[i, q·(k+1)+m, s] = coefficient of uᵐ of B_{s−k+q} on span s (basis::bspline_span_polys,
//                          computed in double),   tab[i, (k+1)², s] = t_s.
struct SpanTables {
  int64_t SP, per;  // padded span count, entries per feature
};
inline SpanTables span_table_dims(const SplineDims& d) {
  const int64_t SP = (d.nk - 1 + 15) / 16 * 16;
  return {SP, ((d.k + 1) * (d.k + 1) + 1) * SP};
}
template <typename T>
void span_table_feature(const SplineDims& d, const SpanTables& st, const T* grid, int64_t i, T* poly, T* ti) {
  const int64_t kk = d.k + 1, nspan = d.nk - 1;
  const T* t = grid + i * d.nk;
  basis::bspline_span_polys<T, double>(t, static_cast<int>(d.nk), d.k, poly);  // poly: (nspan, kk, kk)
  std::fill(ti, ti + st.per, T(0));
  for (int64_t s = 0; s < nspan; ++s) {
    for (int64_t c = 0; c < kk * kk; ++c) ti[c * st.SP + s] = poly[s * kk * kk + c];
    ti[kk * kk * st.SP + s] = t[s];
  }
}

// Forward's set-up for every feature in one parallel region: Wp (pad_feature) and the span tables.
template <typename T>
void local_prepare(const SplineDims& d, const LocalLayout<T>& L, const SpanTables& st, const T* coeff, const T* grid,
                   T* Wp, T* tab) {
  parallel_for(d.in, 1, [&](int64_t a, int64_t b) {
    std::vector<T> poly(static_cast<size_t>((d.nk - 1) * (d.k + 1) * (d.k + 1)));
    for (int64_t i = a; i < b; ++i) {
      pad_feature(d, L, coeff, i, Wp + i * L.nbp * L.outp);
      span_table_feature(d, st, grid, i, poly.data(), tab + i * st.per);
    }
  });
}

// Pass 1 for one feature and R ≤ kSubRows rows. xs: (R) the feature's column; t: (nk) its knots;
// tab: its tables (SP columns). Writes span[r] (0 outside the grid), val[q·kSubRows + r] =
// B_{s−k+q}(x_r) (0 outside the grid or for NaN), and dval likewise with d/dx when not null.
// The span by counting: s = #{j ≥ 1 : t_j ≤ x} is the s with t_s ≤ x < t_{s+1} for ascending knots
// (repeated knots included), the same answer as basis::bspline_span's binary search, without
// data-dependent branches.
template <int KS, typename T>
void local_basis(const T* xs, int64_t R, const T* t, int nk, const T* tab, int64_t SP, int k_rt, int32_t* span,
                 T* val, T* dval) {
  const int k = KS >= 0 ? KS : k_rt;
  const int kk = k + 1;
#ifdef __AVX512F__
  if constexpr (std::is_same_v<T, float>) {
    // 16 rows per vector; table entries by permute (≤ 32 spans) or gather.
    const int nspan = nk - 1;
    const __m512 lo = _mm512_set1_ps(t[0]), hi = _mm512_set1_ps(t[nk - 1]);
    const __m512i one = _mm512_set1_epi32(1);
    auto pick = [&](int row, __m512i s) {
      const float* c = tab + row * SP;
      // (The maskz/mask forms: the plain ones trip GCC 12's -Wmaybe-uninitialized inside its headers.)
      if (nspan <= 16) return _mm512_maskz_permutexvar_ps(0xFFFF, s, _mm512_loadu_ps(c));
      if (nspan <= 32) return _mm512_permutex2var_ps(_mm512_loadu_ps(c), s, _mm512_loadu_ps(c + 16));
      return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), 0xFFFF, s, c, 4);
    };
    for (int64_t r = 0; r < R; r += 16) {
      const __mmask16 lanes = static_cast<__mmask16>(R - r >= 16 ? 0xFFFF : (1u << (R - r)) - 1u);
      const __m512 x = _mm512_maskz_loadu_ps(lanes, xs + r);
      __m512i s = _mm512_setzero_si512();
      for (int j = 1; j < nk - 1; ++j)
        s = _mm512_mask_add_epi32(s, _mm512_cmp_ps_mask(_mm512_set1_ps(t[j]), x, _CMP_LE_OQ), s, one);
      const __mmask16 inside =
          _mm512_cmp_ps_mask(x, lo, _CMP_GE_OQ) & _mm512_cmp_ps_mask(x, hi, _CMP_LT_OQ) & lanes;
      s = _mm512_maskz_mov_epi32(inside, s);
      const __m512 u = _mm512_maskz_sub_ps(inside, x, pick(kk * kk, s));
      for (int q = 0; q < kk; ++q) {
        __m512 a = pick(q * kk + k, s), da = _mm512_setzero_ps();
        for (int m = k - 1; m >= 0; --m) {
          da = _mm512_fmadd_ps(da, u, a);
          a = _mm512_fmadd_ps(a, u, pick(q * kk + m, s));
        }
        _mm512_storeu_ps(val + q * kSubRows + r, _mm512_maskz_mov_ps(inside, a));
        if (dval) _mm512_storeu_ps(dval + q * kSubRows + r, _mm512_maskz_mov_ps(inside, da));
      }
      _mm512_storeu_si512(span + r, s);
    }
    return;
  }
#endif
  for (int64_t r = 0; r < R; ++r) span[r] = 0;
  for (int j = 1; j < nk - 1; ++j) {
    const T tj = t[j];
#pragma omp simd
    for (int64_t r = 0; r < R; ++r) span[r] += tj <= xs[r] ? 1 : 0;
  }
  const T lo = t[0], hi = t[nk - 1];
#pragma omp simd
  for (int64_t r = 0; r < R; ++r) {
    const T x = xs[r];
    const bool inside = x >= lo && x < hi;
    const int s = inside ? span[r] : 0;
    const T u = inside ? x - tab[kk * kk * SP + s] : T(0);
    for (int q = 0; q < kk; ++q) {
      T a = tab[(q * kk + k) * SP + s], da = T(0);
      for (int m = k - 1; m >= 0; --m) {
        da = da * u + a;
        a = a * u + tab[(q * kk + m) * SP + s];
      }
      val[q * kSubRows + r] = inside ? a : T(0);
      if (dval) dval[q * kSubRows + r] = inside ? da : T(0);
    }
    span[r] = s;
  }
}

// x[r0 : r0+R, i0 : i0+F] -> xt (F, kSubRows)
template <typename T>
void gather_columns(const T* x, int64_t in, int64_t r0, int64_t R, int64_t i0, int64_t F, T* xt) {
  for (int64_t r = 0; r < R; ++r) {
    const T* xr = x + (r0 + r) * in + i0;
    for (int64_t b = 0; b < F; ++b) xt[b * kSubRows + r] = xr[b];
  }
}

// Chunks of the out axis of at most nv_max SIMD vectors (a power of two ≤ 16), the rest in smaller
// powers of two (compile-time counts, so a chunk lives in registers). f(integral_constant<NV>, c0)
// for each chunk starting at column c0.
template <typename T, typename F>
void for_chunks(int64_t out, int nv_max, F&& f) {
  const int64_t W = simd_width<T>();
  int64_t c0 = 0;
  while (c0 < out) {
    const int64_t nv = std::min<int64_t>((out - c0 + W - 1) / W, nv_max);
    if (nv >= 16) f(std::integral_constant<int, 16>{}, c0), c0 += 16 * W;
    else if (nv >= 8) f(std::integral_constant<int, 8>{}, c0), c0 += 8 * W;
    else if (nv >= 4) f(std::integral_constant<int, 4>{}, c0), c0 += 4 * W;
    else if (nv >= 2) f(std::integral_constant<int, 2>{}, c0), c0 += 2 * W;
    else f(std::integral_constant<int, 1>{}, c0), c0 += W;
  }
}

// Forward pass-2 blocking: chunks of nv SIMD vectors of the out axis and fb ≥ 2 features per pass
// where possible (y's chunk is loaded and stored once per fb features), so that the fb·nbp
// coefficient rows of one chunk stay in L1 (≈ 32 KiB of its 48) while up to kSubRows rows go past.
struct L1Block {
  int nv;
  int64_t fb;
};
template <typename T>
L1Block l1_block(const LocalLayout<T>& L, int64_t fmax) {
  const int64_t budget = int64_t{32} << 10, vec_bytes = simd_width<T>() * static_cast<int64_t>(sizeof(T));
  int nv = 16;
  while (nv > 4 && L.nbp * nv * vec_bytes * 2 > budget) nv /= 2;
  const int64_t chunk_bytes = L.nbp * std::min<int64_t>(nv, L.outp / simd_width<T>()) * vec_bytes;
  return {nv, std::clamp<int64_t>(budget / chunk_bytes, 1, std::max<int64_t>(1, fmax))};
}

// Pass 2, forward: y[r, :] += Σ_b Σ_q val[b][q][r] · Wp[i0+b, span[b][r] + q, :] for R rows.
// slab: Wp + i0·nbp·outp; y: row r0 of y (N, out).
#ifdef __AVX512F__
// One chunk of NV vectors at column c0 of local_fwd_rows.
template <int KS, int NV, typename T>
void local_fwd_chunk(int k_rt, int64_t out, int64_t outp, int64_t fstride, int64_t c0, int64_t R, int64_t F,
                     const int32_t* span, const T* val, const T* slab, T* y) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int64_t W = S::W;
  const int k = KS >= 0 ? KS : k_rt;
  typename S::M m[NV];
  for (int v = 0; v < NV; ++v) m[v] = S::mask(out - (c0 + v * W));
  for (int64_t r = 0; r < R; ++r) {
    T* yr = y + r * out + c0;
    V acc[NV];
    for (int v = 0; v < NV; ++v) acc[v] = S::mload(m[v], yr + v * W);
    for (int64_t b = 0; b < F; ++b) {
      const T* w = slab + b * fstride + static_cast<int64_t>(span[b * kSubRows + r]) * outp + c0;
      const T* vb = val + b * (k + 1) * kSubRows + r;
      for (int q = 0; q <= k; ++q) {
        const V c = S::set1(vb[q * kSubRows]);
        const T* wq = w + q * outp;
        for (int v = 0; v < NV; ++v) acc[v] = S::fma(c, S::load(wq + v * W), acc[v]);
      }
    }
    for (int v = 0; v < NV; ++v) S::mstore(yr + v * W, m[v], acc[v]);
  }
}
#endif

template <int KS, typename T>
void local_fwd_rows(const SplineDims& d, const LocalLayout<T>& L, int nv_max, int64_t R, int64_t F,
                    const int32_t* span, const T* val, const T* slab, T* y) {
  const int64_t outp = L.outp, fstride = L.nbp * L.outp;
#ifdef __AVX512F__
  for_chunks<T>(d.out, nv_max, [&](auto nvc, int64_t c0) {
    local_fwd_chunk<KS, decltype(nvc)::value>(d.k, d.out, outp, fstride, c0, R, F, span, val, slab, y);
  });
#else
  const int k = KS >= 0 ? KS : d.k;
  for (int64_t r = 0; r < R; ++r) {
    T* __restrict yr = y + r * d.out;
    for (int64_t b = 0; b < F; ++b) {
      const T* w = slab + b * fstride + static_cast<int64_t>(span[b * kSubRows + r]) * outp;
      const T* vb = val + b * (k + 1) * kSubRows + r;
      for (int q = 0; q <= k; ++q) {
        const T c = vb[q * kSubRows];
        const T* __restrict wq = w + q * outp;
#pragma omp simd
        for (int64_t o = 0; o < d.out; ++o) yr[o] += c * wq[o];
      }
    }
  }
#endif
}

#ifdef __AVX512F__
// dx part of local_bwd_rows for one chunk of NV vectors at column c0: per row, g's chunk stays in
// registers while every feature's k+1 Wp rows stream from L1; one horizontal sum per (row, feature).
template <int KS, int NV, typename T>
void local_bwd_dx_chunk(int k_rt, int64_t out, int64_t outp, int64_t fstride, int64_t c0, int64_t R, int64_t F,
                        const int32_t* span, const T* dval, const T* slab, const T* g, T* dxp) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int64_t W = S::W;
  const int k = KS >= 0 ? KS : k_rt;
  typename S::M m[NV];
  for (int v = 0; v < NV; ++v) m[v] = S::mask(out - (c0 + v * W));
  for (int64_t r = 0; r < R; ++r) {
    V gv[NV];
    for (int v = 0; v < NV; ++v) gv[v] = S::mload(m[v], g + r * out + c0 + v * W);
    for (int64_t b = 0; b < F; ++b) {
      const T* w = slab + b * fstride + static_cast<int64_t>(span[b * kSubRows + r]) * outp + c0;
      const T* db = dval + b * (k + 1) * kSubRows + r;
      V p0 = S::zero(), p1 = S::zero();
      for (int q = 0; q <= k; ++q) {
        const T* wq = w + q * outp;
        V a0 = S::zero(), a1 = S::zero();
        for (int v = 0; v + 1 < NV; v += 2) {
          a0 = S::fma(gv[v], S::load(wq + v * W), a0);
          a1 = S::fma(gv[v + 1], S::load(wq + (v + 1) * W), a1);
        }
        if (NV % 2) a0 = S::fma(gv[NV - 1], S::load(wq + (NV - 1) * W), a0);
        const V c = S::set1(db[q * kSubRows]);
        p0 = S::fma(c, a0, p0);
        p1 = S::fma(c, a1, p1);
      }
      dxp[b * kSubRows + r] += S::sum(S::add(p0, p1));
    }
  }
}

// dcoeff part of local_bwd_rows for one feature and one chunk of NV vectors at column c0: rows in
// span order (order), the k+1 dWp rows of a run of equal spans summed in registers and added to
// dwb once per run. sp, vb: the feature's spans and values.
template <int KS, int NV, typename T>
void local_bwd_dw_chunk(int k_rt, int64_t out, int64_t outp, int64_t c0, int64_t R, const int32_t* sp,
                        const int32_t* order, const T* vb, T* dwb, const T* g) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int64_t W = S::W;
  constexpr int KM = KS >= 0 ? KS + 1 : basis::kMaxSplineOrder + 1;
  const int k = KS >= 0 ? KS : k_rt;
  typename S::M m[NV];
  _Pragma("GCC unroll 16") for (int v = 0; v < NV; ++v) m[v] = S::mask(out - (c0 + v * W));
  V acc[KM][NV];
  _Pragma("GCC unroll 16") for (int q = 0; q < KM; ++q)
      _Pragma("GCC unroll 16") for (int v = 0; v < NV; ++v) acc[q][v] = S::zero();
  int cur = -1;
  // Adds a run's sums to the dWp rows cur … cur+k (a macro, not a lambda: a by-reference capture of
  // acc makes GCC keep it in memory; so do loops it does not fully unroll, hence the pragmas).
#define KNOT_FLUSH_RUN                                                                              \
  if (cur >= 0) {                                                                                   \
    _Pragma("GCC unroll 16") for (int q = 0; q <= k; ++q) {                                         \
      T* dw = dwb + (cur + q) * outp + c0;                                                          \
      _Pragma("GCC unroll 16") for (int v = 0; v < NV; ++v)                                         \
          S::store(dw + v * W, S::add(S::load(dw + v * W), acc[q][v]));                            \
    }                                                                                               \
  }
  for (int64_t idx = 0; idx < R; ++idx) {
    const int64_t r = order[idx];
    const int s = sp[r];
    if (s != cur) {
      KNOT_FLUSH_RUN
      cur = s;
      _Pragma("GCC unroll 16") for (int q = 0; q <= k; ++q)
          _Pragma("GCC unroll 16") for (int v = 0; v < NV; ++v) acc[q][v] = S::zero();
    }
    V gv[NV];
    _Pragma("GCC unroll 16") for (int v = 0; v < NV; ++v) gv[v] = S::mload(m[v], g + r * out + c0 + v * W);
    _Pragma("GCC unroll 16") for (int q = 0; q <= k; ++q) {
      const V c = S::set1(vb[q * kSubRows + r]);
      _Pragma("GCC unroll 16") for (int v = 0; v < NV; ++v) acc[q][v] = S::fma(c, gv[v], acc[q][v]);
    }
  }
  KNOT_FLUSH_RUN
#undef KNOT_FLUSH_RUN
}
#endif

// Pass 2, backward, for R rows: with g_r = g[r, :],
//   dxp[b][r]                      = Σ_q dval[b][q][r] · ⟨g_r, Wp[i0+b, span+q, :]⟩   (when slab)
//   dWp[i0+b, span+q, :]          += val[b][q][r] · g_r                               (when dslab)
// SIMD version, two passes (measured: faster than one pass doing both, which runs out of registers):
//   dx — row by row, a chunk of up to 16 vectors of g_r in registers, the Wp rows from L1;
//   dcoeff — per feature the rows in span order (a stable counting sort), so the k+1 dWp rows of a
//            run of equal spans are summed in registers and written once per run, not once per row
//            (a load-FMA-store per row is store-bound); chunks of 4 vectors keep the (k+1)·4 sums
//            and g_r's chunk in registers.
// Everything goes in a fixed order (rows by span then index, chunks left to right), so the result
// does not depend on the thread count.
template <int KS, typename T>
void local_bwd_rows(const SplineDims& d, const LocalLayout<T>& L, int64_t R, int64_t F, const int32_t* span,
                    const T* val, const T* dval, const T* slab, T* dslab, const T* g, T* dxp, int32_t* order,
                    int32_t* count) {
  const int k = KS >= 0 ? KS : d.k;
  const int64_t outp = L.outp, fstride = L.nbp * L.outp;
  const int nspan = static_cast<int>(d.nk - 1);
#ifdef __AVX512F__
  for (int64_t i = 0; i < F * kSubRows; ++i) dxp[i] = T(0);
  if (slab)
    for_chunks<T>(d.out, 16, [&](auto nvc, int64_t c0) {
      local_bwd_dx_chunk<KS, decltype(nvc)::value>(d.k, d.out, outp, fstride, c0, R, F, span, dval, slab, g, dxp);
    });
  if (!dslab) return;
  // Stable counting sort of each feature's rows by span.
  for (int64_t b = 0; b < F; ++b) {
    const int32_t* sp = span + b * kSubRows;
    int32_t* ord = order + b * kSubRows;
    for (int s = 0; s <= nspan; ++s) count[s] = 0;
    for (int64_t r = 0; r < R; ++r) ++count[sp[r] + 1];
    for (int s = 1; s <= nspan; ++s) count[s] += count[s - 1];
    for (int64_t r = 0; r < R; ++r) ord[count[sp[r]]++] = static_cast<int32_t>(r);
  }
  // Chunk-major, so a chunk of g's rows is reused from L1 by all F features.
  for_chunks<T>(d.out, 4, [&](auto nvc, int64_t c0) {
    for (int64_t b = 0; b < F; ++b)
      local_bwd_dw_chunk<KS, decltype(nvc)::value>(d.k, d.out, outp, c0, R, span + b * kSubRows,
                                                   order + b * kSubRows, val + b * (k + 1) * kSubRows,
                                                   dslab + b * fstride, g);
  });
#else
  (void)order, (void)count, (void)nspan;
  for (int64_t i = 0; i < F * kSubRows; ++i) dxp[i] = T(0);
  for (int64_t r = 0; r < R; ++r) {
    const T* __restrict gr = g + r * d.out;
    for (int64_t b = 0; b < F; ++b) {
      const int64_t off = b * fstride + static_cast<int64_t>(span[b * kSubRows + r]) * outp;
      const int64_t vo = b * (k + 1) * kSubRows + r;
      for (int q = 0; q <= k; ++q) {
        if (slab) {
          const T* __restrict wq = slab + off + q * outp;
          T dot = T(0);
#pragma omp simd reduction(+ : dot)
          for (int64_t o = 0; o < d.out; ++o) dot += gr[o] * wq[o];
          dxp[b * kSubRows + r] += dval[vo + q * kSubRows] * dot;
        }
        if (dslab) {
          T* __restrict dwq = dslab + off + q * outp;
          const T c = val[vo + q * kSubRows];
#pragma omp simd
          for (int64_t o = 0; o < d.out; ++o) dwq[o] += c * gr[o];
        }
      }
    }
  }
#endif
}

template <int KS, typename T>
void local_fwd(const SplineDims& d, const T* x, const T* grid, const T* base_w, const T* coeff, T* y) {
  if (d.base) base_fwd(d, x, base_w, y);
  else std::fill(y, y + d.N * d.out, T(0));
  if (d.N == 0 || d.in == 0 || d.out == 0) return;
  const LocalLayout<T> L = local_layout<T>(d);
  const SpanTables st = span_table_dims(d);
  Scratch<T> Wp(static_cast<size_t>(d.in * L.nbp * L.outp)), tab(static_cast<size_t>(d.in * st.per));
  local_prepare(d, L, st, coeff, grid, Wp.data(), tab.data());
  const int64_t kk = d.k + 1;
  const int nk = static_cast<int>(d.nk);
  const L1Block blk = l1_block(L, d.in);
  const int64_t F = blk.fb;
  // Row tiles: the y rows of a tile stay in L2 while every feature block passes over them; about 4
  // tiles per thread or more (parallel_dynamic balances them).
  const int64_t nthreads = num_threads();
  int64_t tile = std::max<int64_t>(kSubRows, (int64_t{512} << 10) / (d.out * static_cast<int64_t>(sizeof(T))));
  tile = std::min(tile, std::max<int64_t>(16, (d.N + 4 * nthreads - 1) / (4 * nthreads)));
  const int64_t ntiles = (d.N + tile - 1) / tile;
  parallel_dynamic(ntiles, [&](int64_t ta, int64_t tb) {
    Scratch<T> xt(static_cast<size_t>(F * kSubRows)), val(static_cast<size_t>(F * kk * kSubRows));
    std::vector<int32_t> span(static_cast<size_t>(F * kSubRows));
    for (int64_t tl = ta; tl < tb; ++tl) {
      const int64_t n0 = tl * tile, n1 = std::min(d.N, n0 + tile);
      for (int64_t i0 = 0; i0 < d.in; i0 += F) {
        const int64_t Fb = std::min(F, d.in - i0);
        for (int64_t r0 = n0; r0 < n1; r0 += kSubRows) {
          const int64_t R = std::min(kSubRows, n1 - r0);
          gather_columns(x, d.in, r0, R, i0, Fb, xt.data());
          for (int64_t b = 0; b < Fb; ++b)
            local_basis<KS>(xt.data() + b * kSubRows, R, grid + (i0 + b) * d.nk, nk, tab.data() + (i0 + b) * st.per,
                            st.SP, d.k, span.data() + b * kSubRows, val.data() + b * kk * kSubRows,
                            static_cast<T*>(nullptr));
          local_fwd_rows<KS>(d, L, blk.nv, R, Fb, span.data(), val.data(), Wp.data() + i0 * L.nbp * L.outp,
                             y + r0 * d.out);
        }
      }
    }
  });
}

template <int KS, typename T>
void local_bwd(const SplineDims& d, const T* x, const T* grid, const T* base_w, const T* coeff, const T* g, T* dx,
               T* dbase, T* dcoeff) {
  CMap<T> G(g, d.N, d.out);
  {
    const bool base_dx = dx && d.base;
    Scratch<T> S(dbase ? static_cast<size_t>(d.N * d.in) : 0), DS(base_dx ? static_cast<size_t>(d.N * d.in) : 0);
    if (dbase || base_dx) silu_parallel(x, d.N * d.in, dbase ? S.data() : nullptr, base_dx ? DS.data() : nullptr);
    if (dbase) {  // blocks of dbase rows (output features) on the pool
      parallel_gemm_rows(d.out, d.in, d.N, [&](int64_t o0, int64_t o1) {
        Map<T>(dbase + o0 * d.in, o1 - o0, d.in).noalias() =
            G.middleCols(o0, o1 - o0).transpose() * CMap<T>(S.data(), d.N, d.in);
      });
    }
    if (base_dx) {
      parallel_gemm_rows(d.N, d.in, d.out, [&](int64_t r0, int64_t r1) {
        Map<T> DX(dx + r0 * d.in, r1 - r0, d.in);
        DX.noalias() = G.middleRows(r0, r1 - r0) * CMap<T>(base_w, d.out, d.in);
        DX.array() *= CMap<T>(DS.data() + r0 * d.in, r1 - r0, d.in).array();
      });
    } else if (dx) {
      std::fill(dx, dx + d.N * d.in, T(0));
    }
  }
  if (dcoeff && d.N == 0) std::fill(dcoeff, dcoeff + d.out * d.in * d.nb, T(0));
  if ((!dx && !dcoeff) || d.N == 0 || d.in == 0 || d.out == 0) return;
  const LocalLayout<T> L = local_layout<T>(d);
  const SpanTables st = span_table_dims(d);
  // Each task sets up (and, for dcoeff, reads back) the slabs of its own features: no extra
  // parallel regions (under load each one waits for a descheduled thread).
  Scratch<T> Wp(dx ? static_cast<size_t>(d.in * L.nbp * L.outp) : 0);
  Scratch<T> dWp(dcoeff ? static_cast<size_t>(d.in * L.nbp * L.outp) : 0);
  Scratch<T> tab(static_cast<size_t>(d.in * st.per));
  const int64_t kk = d.k + 1;
  const int nk = static_cast<int>(d.nk);
  // Features per task (a thread owns a task's dcoeff and dx columns): the task's Wp and dWp slabs stay
  // in L2 while all rows stream past, at least one task per thread; within a task, blocks of fb
  // features (below) share each block of rows' basis pass and g rows.
  const int64_t nthreads = num_threads();
  const int slabs = (dx ? 1 : 0) + (dcoeff ? 1 : 0);
  const int64_t slab_bytes = L.nbp * L.outp * static_cast<int64_t>(sizeof(T)) * slabs;
  // About 4 tasks per thread (parallel_dynamic balances them), a multiple of the thread count, of
  // near-equal size.
  const int64_t fmax =
      std::clamp<int64_t>((int64_t{1} << 20) / slab_bytes, 1, (d.in + 4 * nthreads - 1) / (4 * nthreads));
  const int64_t ntasks0 = std::min(d.in, ((d.in + fmax - 1) / fmax + nthreads - 1) / nthreads * nthreads);
  const int64_t F = (d.in + ntasks0 - 1) / ntasks0;
  // Features per pass: their Wp/dWp rows of one 4-vector chunk stay in L1 next to that chunk of g.
  const int64_t fb = std::clamp<int64_t>(
      (int64_t{24} << 10) / (L.nbp * 4 * simd_width<T>() * static_cast<int64_t>(sizeof(T)) * slabs), 1, F);
  const int64_t ntasks = (d.in + F - 1) / F;
  parallel_dynamic(ntasks, [&](int64_t ta, int64_t tb) {
    Scratch<T> xt(static_cast<size_t>(fb * kSubRows)), val(static_cast<size_t>(fb * kk * kSubRows)),
        dval(static_cast<size_t>(fb * kk * kSubRows), /*zero=*/true), dxp(static_cast<size_t>(fb * kSubRows));
    std::vector<int32_t> span(static_cast<size_t>(fb * kSubRows)), order(static_cast<size_t>(fb * kSubRows)),
        count(static_cast<size_t>(d.nk + 1));
    std::vector<T> poly(static_cast<size_t>((d.nk - 1) * kk * kk));
    for (int64_t task = ta; task < tb; ++task) {
      const int64_t t0 = task * F, t1 = std::min(d.in, t0 + F);
      for (int64_t i = t0; i < t1; ++i) {
        if (dx) pad_feature(d, L, coeff, i, Wp.data() + i * L.nbp * L.outp);
        if (dcoeff) std::fill(dWp.data() + i * L.nbp * L.outp, dWp.data() + (i + 1) * L.nbp * L.outp, T(0));
        span_table_feature(d, st, grid, i, poly.data(), tab.data() + i * st.per);
      }
      for (int64_t r0 = 0; r0 < d.N; r0 += kSubRows) {
        const int64_t R = std::min(kSubRows, d.N - r0);
        for (int64_t i0 = t0; i0 < t1; i0 += fb) {
          const int64_t Fb = std::min(fb, t1 - i0);
          gather_columns(x, d.in, r0, R, i0, Fb, xt.data());
          for (int64_t b = 0; b < Fb; ++b)
            local_basis<KS>(xt.data() + b * kSubRows, R, grid + (i0 + b) * d.nk, nk,
                            tab.data() + (i0 + b) * st.per, st.SP, d.k, span.data() + b * kSubRows,
                            val.data() + b * kk * kSubRows, dx ? dval.data() + b * kk * kSubRows : nullptr);
          local_bwd_rows<KS>(d, L, R, Fb, span.data(), val.data(), dval.data(),
                             dx ? Wp.data() + i0 * L.nbp * L.outp : nullptr,
                             dcoeff ? dWp.data() + i0 * L.nbp * L.outp : nullptr, g + r0 * d.out, dxp.data(),
                             order.data(), count.data());
          if (dx)
            for (int64_t r = 0; r < R; ++r)
              for (int64_t b = 0; b < Fb; ++b) dx[(r0 + r) * d.in + i0 + b] += dxp[b * kSubRows + r];
        }
      }
      if (dcoeff)
        for (int64_t i = t0; i < t1; ++i) unpad_feature(d, L, dWp.data() + i * L.nbp * L.outp, i, dcoeff);
    }
  });
}

}  // namespace

template <typename T>
void bspline_local_fwd(const SplineDims& d, const T* x, const T* grid, const T* base_w, const T* coeff, T* y) {
  with_order(d.k, [&](auto kc) { local_fwd<decltype(kc)::value>(d, x, grid, base_w, coeff, y); });
}

template <typename T>
void bspline_local_bwd(const SplineDims& d, const T* x, const T* grid, const T* base_w, const T* coeff, const T* g,
                       T* dx, T* dbase, T* dcoeff) {
  with_order(d.k, [&](auto kc) { local_bwd<decltype(kc)::value>(d, x, grid, base_w, coeff, g, dx, dbase, dcoeff); });
}

template void bspline_local_fwd<float>(const SplineDims&, const float*, const float*, const float*, const float*,
                                       float*);
template void bspline_local_fwd<double>(const SplineDims&, const double*, const double*, const double*,
                                        const double*, double*);
template void bspline_local_bwd<float>(const SplineDims&, const float*, const float*, const float*, const float*,
                                       const float*, float*, float*, float*);
template void bspline_local_bwd<double>(const SplineDims&, const double*, const double*, const double*,
                                        const double*, const double*, double*, double*, double*);

}  // namespace knot::kernels::cpu::spline_detail
