// CPU kernels of the KAN layers (see kernels/spline.h for the formulas and the two B-spline paths).
//
// Feature-matrix driver (dense B-spline path and every generic basis): for a block of R rows, a
// `fill` callback writes A (R, in·m) — m columns per input feature, each depending on that input
// only — and optionally D = ∂A/∂x (same shape). Then
//   forward:  Y[rows] = A·Wᵀ                         W: (out, in·m)
//   backward: dW += G[rows]ᵀ·A,  dA = G[rows]·W,  dx[r, i] = Σ_c dA[r, i·m+c]·D[r, i·m+c]
// Blocks keep A at a few MiB whatever N is, so nothing of size N·in·m outlives a block.
//
// The local B-spline path is in kernels/cpu/spline_local.cpp (its SIMD vectors in spline_simd.h);
// kernels/cpu/spline_common.h holds what the two files share.
#include "kernels/cpu/spline_common.h"  // first (see there)

#include <algorithm>
#include <functional>
#include <type_traits>
#include <vector>

#include "core/dispatch.h"
#include "kernels/bases/bspline.h"
#include "kernels/cpu/loops.h"
#include "kernels/math.h"
#include "kernels/spline.h"

namespace knot::kernels::cpu {
using namespace spline_detail;
namespace {

template <typename T> T silu(T x) { return math::unary_fwd<UnaryOp::silu>(x, T(0), T(0)); }
template <typename T> T silu_grad(T x) { return math::unary_deriv<UnaryOp::silu>(x, T(0), T(0), T(0)); }

// Rows per block so that one (R, cols) buffer stays around 4 MiB.
int64_t block_rows(int64_t n, int64_t cols, size_t elem) {
  const int64_t budget = (int64_t{4} << 20) / static_cast<int64_t>(elem);
  return std::clamp<int64_t>(budget / std::max<int64_t>(cols, 1), 64, std::max<int64_t>(n, 1));
}

// fill(x_rows, rows, A, D): A, D (rows, in·m); D may be null.
template <typename T>
using Fill = std::function<void(const T*, int64_t, T*, T*)>;

// Calls fill on parallel sub-ranges of one block of rows.
template <typename T>
void fill_parallel(const Fill<T>& fill, const T* x, int64_t rows, int64_t in, int64_t cols, T* A, T* D) {
  const int64_t grain = std::max<int64_t>(1, 2048 / std::max<int64_t>(cols, 1));
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    fill(x + r0 * in, r1 - r0, A + r0 * cols, D ? D + r0 * cols : nullptr);
  });
}

// Y (N, out) = A(x)·Wᵀ, W: (out, cols) contiguous.
template <typename T>
void features_fwd(const T* x, int64_t N, int64_t in, const T* W, int64_t out, int64_t cols, const Fill<T>& fill, T* Y) {
  const int64_t R = block_rows(N, cols, sizeof(T));
  Scratch<T> A(static_cast<size_t>(R * cols));
  CMap<T> Wm(W, out, cols);
  for (int64_t r0 = 0; r0 < N; r0 += R) {
    const int64_t rows = std::min(R, N - r0);
    fill_parallel(fill, x + r0 * in, rows, in, cols, A.data(), static_cast<T*>(nullptr));
    CMap<T> Am(A.data(), rows, cols);
    Map<T> Ym(Y + r0 * out, rows, out);
    Ym.noalias() = Am * Wm.transpose();
  }
}

// dW (out, cols) and dx (N, in) from G (N, out); either may be null.
// (Tried: dx recomputing the B-spline derivatives at the k+1 non-zero columns from dA instead of the
// fill writing a dense D — slower on the CPU, the streaming SIMD dot over dA·D is cheaper than a
// second scalar Cox–de Boor pass.)
template <typename T>
void features_bwd(const T* x, int64_t N, int64_t in, const T* W, int64_t out, int64_t cols, int64_t m,
                  const Fill<T>& fill, const T* G, T* dW, T* dx) {
  const int64_t R = block_rows(N, cols, sizeof(T));
  const bool dense_d = dx != nullptr;
  Scratch<T> A(static_cast<size_t>(R * cols)), D(dense_d ? A.size() : 0), dA(dx ? A.size() : 0);
  CMap<T> Wm(W, out, cols);
  if (dW) Map<T>(dW, out, cols).setZero();
  for (int64_t r0 = 0; r0 < N; r0 += R) {
    const int64_t rows = std::min(R, N - r0);
    fill_parallel(fill, x + r0 * in, rows, in, cols, A.data(), dense_d ? D.data() : nullptr);
    CMap<T> Gm(G + r0 * out, rows, out);
    if (dW) {
      CMap<T> Am(A.data(), rows, cols);
      Map<T>(dW, out, cols).noalias() += Gm.transpose() * Am;
    }
    if (dx) {
      Map<T> dAm(dA.data(), rows, cols);
      dAm.noalias() = Gm * Wm;
      parallel_for(rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(cols, 1)), [&](int64_t a, int64_t b) {
        for (int64_t r = a; r < b; ++r) {
          const T* da = dA.data() + r * cols;
          const T* d = D.data() + r * cols;
          T* dxr = dx + (r0 + r) * in;
          for (int64_t i = 0; i < in; ++i) {
            T acc = T(0);
#pragma omp simd reduction(+ : acc)
            for (int64_t c = 0; c < m; ++c) acc += da[i * m + c] * d[i * m + c];
            dxr[i] = acc;
          }
        }
      });
    }
  }
}

// ---- B-spline (dense path) ----------------------------------------------------------------------

template <typename T>
std::vector<T> inv_denoms(const T* grid, int64_t in, int64_t nk, int k) {
  std::vector<T> inv(static_cast<size_t>(std::max<int64_t>(1, in * k * nk)));
  for (int64_t i = 0; i < in; ++i)
    basis::bspline_inv_denoms(grid + i * nk, static_cast<int>(nk), k, inv.data() + i * k * nk);
  return inv;
}

// The fill for the dense path: per feature m = nb (+1 with the base branch) columns,
// [silu(x_i), B_0(x_i) … B_{nb−1}(x_i)].
template <int KS, typename T>
Fill<T> spline_fill(const SplineDims& d, const T* grid, const T* inv) {
  return [d, grid, inv](const T* x, int64_t rows, T* A, T* D) {
    const int64_t m = d.nb + (d.base ? 1 : 0);
    const int nk = static_cast<int>(d.nk);
    T N[basis::kMaxSplineOrder + 1], dN[basis::kMaxSplineOrder + 1];
    for (int64_t r = 0; r < rows; ++r) {
      T* a = A + r * d.in * m;
      T* dd = D ? D + r * d.in * m : nullptr;
      std::fill(a, a + d.in * m, T(0));
      if (dd) std::fill(dd, dd + d.in * m, T(0));
      for (int64_t i = 0; i < d.in; ++i) {
        const T xv = x[r * d.in + i];
        T* ai = a + i * m;
        T* di = dd ? dd + i * m : nullptr;
        if (d.base) {
          ai[0] = silu(xv);
          if (di) di[0] = silu_grad(xv);
          ++ai;
          if (di) ++di;
        }
        const T* t = grid + i * d.nk;
        const int s = basis::bspline_span(xv, t, nk);
        if (s < 0) continue;
        basis::bspline_local_inv<KS>(xv, t, inv + i * d.k * d.nk, nk, d.k, s, N, di ? dN : nullptr);
        for (int q = 0; q <= d.k; ++q) {
          const int64_t j = s - d.k + q;
          if (j < 0 || j >= d.nb) continue;
          ai[j] = N[q];
          if (di) di[j] = dN[q];
        }
      }
    }
  };
}

// Wcat (out, in, m) = [base_w[:, :, None] | coeff] along the last axis.
template <typename T>
Scratch<T> concat_weights(const SplineDims& d, const T* base_w, const T* coeff) {
  const int64_t m = d.nb + (d.base ? 1 : 0);
  Scratch<T> W(static_cast<size_t>(d.out * d.in * m));
  parallel_for(d.out * d.in, 16384, [&](int64_t a, int64_t b) {
    for (int64_t oi = a; oi < b; ++oi) {
      T* w = W.data() + oi * m;
      if (d.base) *w++ = base_w[oi];
      std::copy(coeff + oi * d.nb, coeff + (oi + 1) * d.nb, w);
    }
  });
  return W;
}

}  // namespace

Tensor bspline_basis(const Tensor& x, const Tensor& grid, int k, bool derivative) {
  KNOT_CHECK(x.is_contiguous() && grid.is_contiguous(), "bspline_basis: kernel expects contiguous inputs");
  const int64_t N = x.size(0), in = x.size(1), nk = grid.size(1), nb = nk - k - 1;
  Tensor out = empty({N, in, nb}, x.dtype());
  dispatch_float(x.dtype(), "bspline_basis", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* pg = grid.data<T>();
    T* po = out.data<T>();
    const std::vector<T> inv = inv_denoms(pg, in, nk, k);
    parallel_for(N * in, 4096, [&](int64_t a, int64_t b) {
      T v[basis::kMaxSplineOrder + 1], dv[basis::kMaxSplineOrder + 1];
      for (int64_t e = a; e < b; ++e) {
        const int64_t i = e % in;
        const T* t = pg + i * nk;
        T* dst = po + e * nb;
        std::fill(dst, dst + nb, T(0));
        const int s = basis::bspline_span(px[e], t, static_cast<int>(nk));
        if (s < 0) continue;
        basis::bspline_local_inv<-1>(px[e], t, inv.data() + i * k * nk, static_cast<int>(nk), k, s, v, dv);
        for (int q = 0; q <= k; ++q) {
          const int64_t j = s - k + q;
          if (j >= 0 && j < nb) dst[j] = derivative ? dv[q] : v[q];
        }
      }
    });
  });
  return out;
}

Tensor kan_bspline_fwd(const Tensor& x, const Tensor& grid, const Tensor& base_w, const Tensor& coeff, int k,
                       SplinePath path) {
  const SplineDims d = spline_dims("kan_bspline", x, grid, base_w, coeff, k);
  Tensor y = empty({d.N, d.out}, x.dtype());
  dispatch_float(x.dtype(), "kan_bspline", [&](auto tag) {
    using T = decltype(tag);
    const T* pbase = d.base ? base_w.data<T>() : nullptr;
    if (resolve_spline_path(path, d.nb) == SplinePath::local) {
      bspline_local_fwd<T>(d, x.data<T>(), grid.data<T>(), pbase, coeff.data<T>(), y.data<T>());
      return;
    }
    const int64_t m = d.nb + (d.base ? 1 : 0);
    const Scratch<T> W = concat_weights(d, pbase, coeff.data<T>());
    const std::vector<T> inv = inv_denoms(grid.data<T>(), d.in, d.nk, k);
    with_order(k, [&](auto kc) {
      features_fwd<T>(x.data<T>(), d.N, d.in, W.data(), d.out, d.in * m,
                      spline_fill<decltype(kc)::value>(d, grid.data<T>(), inv.data()), y.data<T>());
    });
  });
  return y;
}

SplineGrads kan_bspline_bwd(const Tensor& x, const Tensor& grid, const Tensor& base_w, const Tensor& coeff,
                            const Tensor& g, int k, SplinePath path, bool need_dx, bool need_dbase, bool need_dcoeff) {
  const SplineDims d = spline_dims("kan_bspline backward", x, grid, base_w, coeff, k);
  need_dbase = need_dbase && d.base;
  SplineGrads out;
  if (need_dx) out.dx = empty({d.N, d.in}, x.dtype());
  if (need_dbase) out.dbase_w = empty({d.out, d.in}, x.dtype());
  if (need_dcoeff) out.dcoeff = empty({d.out, d.in, d.nb}, x.dtype());
  dispatch_float(x.dtype(), "kan_bspline backward", [&](auto tag) {
    using T = decltype(tag);
    const T* pbase = d.base ? base_w.data<T>() : nullptr;
    T* pdx = need_dx ? out.dx.template data<T>() : nullptr;
    T* pdb = need_dbase ? out.dbase_w.template data<T>() : nullptr;
    T* pdc = need_dcoeff ? out.dcoeff.template data<T>() : nullptr;
    if (resolve_spline_path(path, d.nb) == SplinePath::local) {
      bspline_local_bwd<T>(d, x.data<T>(), grid.data<T>(), pbase, coeff.data<T>(), g.data<T>(), pdx, pdb, pdc);
      return;
    }
    const int64_t m = d.nb + (d.base ? 1 : 0);
    const Scratch<T> W = concat_weights(d, pbase, coeff.data<T>());
    Scratch<T> dW(need_dbase || need_dcoeff ? W.size() : 0);
    const std::vector<T> inv = inv_denoms(grid.data<T>(), d.in, d.nk, k);
    with_order(k, [&](auto kc) {
      features_bwd<T>(x.data<T>(), d.N, d.in, W.data(), d.out, d.in * m, m,
                      spline_fill<decltype(kc)::value>(d, grid.data<T>(), inv.data()), g.data<T>(),
                      dW.empty() ? nullptr : dW.data(), pdx);
    });
    if (dW.empty()) return;
    parallel_for(d.out * d.in, 16384, [&](int64_t a, int64_t b) {
      for (int64_t oi = a; oi < b; ++oi) {
        const T* w = dW.data() + oi * m;
        if (d.base) {
          if (pdb) pdb[oi] = w[0];
          ++w;
        }
        if (pdc) std::copy(w, w + d.nb, pdc + oi * d.nb);
      }
    });
  });
  return out;
}

// ---- generic basis ----------------------------------------------------------------------------

namespace {
template <typename T>
Fill<T> basis_fill(const BasisEval& b, int64_t in) {
  if constexpr (std::is_same_v<T, float>) {
    KNOT_CHECK(b.f32, "kan_basis: this basis has no f32 evaluation");
    return [&b, in](const T* x, int64_t rows, T* A, T* D) { b.f32(x, rows, in, A, D); };
  } else {
    KNOT_CHECK(b.f64, "kan_basis: this basis has no f64 evaluation");
    return [&b, in](const T* x, int64_t rows, T* A, T* D) { b.f64(x, rows, in, A, D); };
  }
}
}  // namespace

Tensor kan_basis_fwd(const Tensor& x, const Tensor& w, const BasisEval& basis) {
  KNOT_CHECK(x.is_contiguous() && w.is_contiguous(), "kan_basis: kernel expects contiguous inputs");
  const int64_t N = x.size(0), in = x.size(1), out = w.size(0), nf = basis.nf;
  Tensor y = empty({N, out}, x.dtype());
  dispatch_float(x.dtype(), "kan_basis", [&](auto tag) {
    using T = decltype(tag);
    features_fwd<T>(x.data<T>(), N, in, w.data<T>(), out, in * nf, basis_fill<T>(basis, in), y.data<T>());
  });
  return y;
}

std::array<Tensor, 2> kan_basis_bwd(const Tensor& x, const Tensor& w, const Tensor& g, const BasisEval& basis,
                                    bool need_dx, bool need_dw) {
  const int64_t N = x.size(0), in = x.size(1), out = w.size(0), nf = basis.nf;
  std::array<Tensor, 2> r;
  if (need_dx) r[0] = empty({N, in}, x.dtype());
  if (need_dw) r[1] = empty({out, in, nf}, x.dtype());
  dispatch_float(x.dtype(), "kan_basis backward", [&](auto tag) {
    using T = decltype(tag);
    features_bwd<T>(x.data<T>(), N, in, w.data<T>(), out, in * nf, nf, basis_fill<T>(basis, in), g.data<T>(),
                    need_dw ? r[1].template data<T>() : nullptr, need_dx ? r[0].template data<T>() : nullptr);
  });
  return r;
}

}  // namespace knot::kernels::cpu
