// KAN kernels: the fused B-spline layer and the generic "basis expansion then GEMM" layer.
//
// B-spline (efficient-kan's KANLinear), with nb = G+k functions per input and coeff = spline_weight ⊙
// spline_scaler[..., None] already folded by the op layer:
//   y = act(x)·base_wᵀ + B(x)·coeffᵀ          x: (N, in)  B(x): (N, in·nb)  coeff: (out, in·nb)
// Two CPU paths, same result:
//   dense  — builds [act(x) | B(x)] for a block of rows and runs one Eigen GEMM per block; cost
//            2·N·out·in·(nb+1) flops, i.e. (G+k+1) Linear layers. Only for the smallest bases.
//   local  — only the k+1 non-zero B-splines of each input touch the output (gather-accumulate):
//            2·N·out·in·(k+1) flops whatever G is, SIMD kernels at about the GEMM's flop rate.
// `SplinePath::automatic` picks by nb (see kLocalPathMinBases). Neither path stores the basis: backward
// recomputes it from x (the span and O(k²) flops per element).
//
// Generic basis: y = Φ(x)·wᵀ with Φ(x): (N, in·nf) built block-wise from a basis's per-element
// values; backward needs the per-element derivatives dΦ/dx.
#pragma once

#include <array>
#include <cstdint>
#include <functional>

#include "core/error.h"
#include "kernels/bases/bspline.h"
#include "kernels/dispatch.h"

namespace knot::kernels {

// Sizes of a B-spline KAN op — x (N, in), grid (in, nk), coeff (out, in, nb = nk − k − 1), base_w
// (out, in) or undefined — with the checks every backend's kernels rely on (contiguous operands, a
// supported order). Shared by the CPU and CUDA kernels.
struct SplineDims {
  int64_t N, in, out, nk, nb;
  int k;
  bool base;
  int64_t m() const { return nb + (base ? 1 : 0); }  // feature columns per input on the dense path
};
inline SplineDims spline_dims(const char* op, const Tensor& x, const Tensor& grid, const Tensor& base_w,
                              const Tensor& coeff, int k) {
  KNOT_CHECK(k >= 0 && k <= basis::kMaxSplineOrder, "{}: spline order {} outside 0 … {}", op, k,
             basis::kMaxSplineOrder);
  KNOT_CHECK(x.is_contiguous() && grid.is_contiguous() && coeff.is_contiguous() &&
                 (!base_w.defined() || base_w.is_contiguous()),
             "{}: kernel expects contiguous inputs", op);
  return SplineDims{x.size(0), x.size(1), coeff.size(0), grid.size(1), grid.size(1) - k - 1, k, base_w.defined()};
}

enum class SplinePath { automatic, dense, local };

// automatic: the local path from this many basis functions per input (G+k) on. Measured on the CPU
// backend (docs/benchmarks.md, "Kernel notes"), k = 3, forward+backward: at in = out ≤ 256 the local
// path wins at every G (from G+k = 4); at in = out = 1024 the two are even at G+k = 5 and local wins
// from 6 on. (The local kernels do (k+1)/(G+k) of the dense path's multiply-adds.)
constexpr int64_t kLocalPathMinBases = 6;
inline SplinePath resolve_spline_path(SplinePath p, int64_t nb) {
  if (p != SplinePath::automatic) return p;
  return nb >= kLocalPathMinBases ? SplinePath::local : SplinePath::dense;
}

// A basis expansion evaluated on the host: fills phi[r, i, c] = φ_c(x[r, i]) and, when dphi is not
// null, dphi[r, i, c] = φ_c'(x[r, i]) for a block of rows. x: (rows, in) contiguous;
// phi, dphi: (rows, in, nf) contiguous. Called concurrently on disjoint row blocks.
struct BasisEval {
  int64_t nf = 0;  // functions per input
  std::function<void(const float* x, int64_t rows, int64_t in, float* phi, float* dphi)> f32;
  std::function<void(const double* x, int64_t rows, int64_t in, double* phi, double* dphi)> f64;
};

struct SplineGrads {
  Tensor dx;       // (N, in)
  Tensor dbase_w;  // (out, in)
  Tensor dcoeff;   // (out, in, nb)
};

// {dx, dw} of kan_basis_bwd (one name: a kernel's return type is one macro argument).
using BasisGrads = std::array<Tensor, 2>;

#define KNOT_SPLINE_KERNELS(X)                                                                                  \
  /* x: (N, in)  grid: (in, nk) -> (N, in, nk-k-1) values, or derivatives d/dx when `derivative` */             \
  X(Tensor, bspline_basis, (const Tensor& x, const Tensor& grid, int k, bool derivative))                       \
  /* x: (N, in)  grid: (in, nk)  base_w: (out, in) or undefined  coeff: (out, in, nk-k-1)          */           \
  /*   -> y: (N, out) = silu(x)·base_wᵀ + B(x)·coeffᵀ                                             */            \
  X(Tensor, kan_bspline_fwd, (const Tensor& x, const Tensor& grid, const Tensor& base_w, const Tensor& coeff,   \
                              int k, SplinePath path))                                                          \
  /* g: (N, out) -> the gradients asked for (others undefined)                                     */           \
  X(SplineGrads, kan_bspline_bwd, (const Tensor& x, const Tensor& grid, const Tensor& base_w,                   \
                                   const Tensor& coeff, const Tensor& g, int k, SplinePath path, bool need_dx,  \
                                   bool need_dbase, bool need_dcoeff))                                          \
  /* x: (N, in)  w: (out, in, nf) -> y: (N, out) = Φ(x)·wᵀ                                         */           \
  X(Tensor, kan_basis_fwd, (const Tensor& x, const Tensor& w, const BasisEval& basis))                          \
  /* g: (N, out) -> {dx (N, in), dw (out, in, nf)}, each only when asked for                       */           \
  X(BasisGrads, kan_basis_bwd, (const Tensor& x, const Tensor& w, const Tensor& g, const BasisEval& basis,      \
                                bool need_dx, bool need_dw))

namespace cpu { KNOT_SPLINE_KERNELS(KNOT_DECLARE_KERNEL) }
namespace cuda { KNOT_SPLINE_KERNELS(KNOT_DECLARE_KERNEL) }

inline Tensor bspline_basis(const Tensor& x, const Tensor& grid, int k, bool derivative = false) {
  check_same_device("bspline_basis", x, grid);
  return KNOT_DISPATCH(x, bspline_basis(x, grid, k, derivative));
}
inline Tensor kan_bspline_fwd(const Tensor& x, const Tensor& grid, const Tensor& base_w, const Tensor& coeff, int k,
                              SplinePath path) {
  return KNOT_DISPATCH(x, kan_bspline_fwd(x, grid, base_w, coeff, k, path));
}
inline SplineGrads kan_bspline_bwd(const Tensor& x, const Tensor& grid, const Tensor& base_w, const Tensor& coeff,
                                   const Tensor& g, int k, SplinePath path, bool need_dx, bool need_dbase,
                                   bool need_dcoeff) {
  return KNOT_DISPATCH(x, kan_bspline_bwd(x, grid, base_w, coeff, g, k, path, need_dx, need_dbase, need_dcoeff));
}
inline Tensor kan_basis_fwd(const Tensor& x, const Tensor& w, const BasisEval& basis) {
  return KNOT_DISPATCH(x, kan_basis_fwd(x, w, basis));
}
inline std::array<Tensor, 2> kan_basis_bwd(const Tensor& x, const Tensor& w, const Tensor& g, const BasisEval& basis,
                                           bool need_dx, bool need_dw) {
  return KNOT_DISPATCH(x, kan_basis_bwd(x, w, g, basis, need_dx, need_dw));
}

// Host-only (kernels/cpu/lstsq.cpp), f64: the linear map of a B-spline grid change. x: (N, in) the
// inputs to fit on, knots_new: (in, nk'), knots_old: (in, nk), order k -> T: (in, nb', nb) with
// nb = nk − k − 1, such that the coefficients c' = T_i·c on the new grid are the minimum-norm
// least-squares fit, on x's column i, of the spline with coefficients c on the old grid
// (KANLinear::update_grid and refine_grid). Memory O(in·nb'·nb), not O(N·in·out).
Tensor bspline_regrid_map(const Tensor& x, const Tensor& knots_new, const Tensor& knots_old, int k);

}  // namespace knot::kernels
