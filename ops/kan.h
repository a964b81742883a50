// KAN ops: the fused B-spline layer of efficient-kan (KANLinear) and the generic basis layer, each
// with a hand-written backward, plus composite references built from primitive ops.
//
//   kan_bspline:  y = silu(x)·base_weightᵀ + B(x)·(spline_weight ⊙ spline_scaler[..., None])ᵀ
//                 B(x): Cox–de Boor B-splines of order k on per-feature knots, flattened to (N, in·(G+k)).
//                 Saves x and the weights only; the basis is recomputed in backward.
//   kan_basis:    y = Φ(x)·weightᵀ for any per-element basis Φ with nf functions per input.
#pragma once

#include "core/tensor.h"
#include "kernels/spline.h"

namespace knot {

using kernels::BasisEval;
using kernels::SplinePath;

// x: (..., in)  grid: (in, G+2k+1)  base_weight: (out, in) or undefined (no base branch)
// spline_weight: (out, in, G+k)  spline_scaler: (out, in) or undefined  ->  (..., out)
// Differentiable in x, base_weight, spline_weight and spline_scaler (not in grid).
// path: dense GEMM or local support; automatic picks by G+k (kernels::kLocalPathMinBases).
Tensor kan_bspline(const Tensor& x, const Tensor& grid, const Tensor& base_weight, const Tensor& spline_weight,
                   const Tensor& spline_scaler, int k, SplinePath path = SplinePath::automatic);
// The same function from primitive ops (dense basis by the recursion, then matmul). For tests.
Tensor kan_bspline_ref(const Tensor& x, const Tensor& grid, const Tensor& base_weight, const Tensor& spline_weight,
                       const Tensor& spline_scaler, int k);

// x: (N, in)  grid: (in, G+2k+1) -> (N, in, G+k): the B-spline values (efficient-kan's b_splines).
// Kernel version: not differentiable (use it for fits and inspection).
Tensor bspline_basis(const Tensor& x, const Tensor& grid, int k);
// d/dx of each value, same shape.
Tensor bspline_basis_deriv(const Tensor& x, const Tensor& grid, int k);
// Composite version: Cox–de Boor with elementwise ops, differentiable in x.
Tensor bspline_basis_ref(const Tensor& x, const Tensor& grid, int k);

// x: (..., in)  weight: (out, in, nf) -> (..., out) = Φ(x)·weightᵀ, differentiable in x and weight.
Tensor kan_basis(const Tensor& x, const Tensor& weight, const BasisEval& basis, const char* op = "kan_basis");

}  // namespace knot
