// KAN ops (see ops/kan.h): argument checks, autograd wiring, and the composite references.
//
// kan_bspline folds the standalone scaler into the coefficients (coeff = spline_weight ⊙ scaler) before
// the kernel and unfolds it in backward:
//   dspline_weight = dcoeff ⊙ scaler[..., None],   dspline_scaler = Σ_c dcoeff ⊙ spline_weight.
#include "ops/kan.h"

#include "kernels/bases/bspline.h"
#include "kernels/elementwise.h"
#include "ops/ops.h"

namespace knot {
namespace {

struct SplineShapes {
  int64_t in, out, nk, nb;
};

SplineShapes check_spline_args(const char* op, const Tensor& x, const Tensor& grid, const Tensor& base_weight,
                               const Tensor& spline_weight, const Tensor& spline_scaler, int k) {
  KNOT_CHECK(k >= 0 && k <= basis::kMaxSplineOrder, "{}: spline order k = {} is outside 0 … {}", op, k,
             basis::kMaxSplineOrder);
  KNOT_CHECK(grid.dim() == 2, "{}: grid must be (in, G+2k+1), got {}", op, shape_str(grid.shape()));
  SplineShapes s{};
  s.in = grid.size(0);
  s.nk = grid.size(1);
  s.nb = s.nk - k - 1;
  KNOT_CHECK(s.nb >= 1, "{}: grid {} has too few knots for k = {} (need at least k+2 per feature)", op,
             shape_str(grid.shape()), k);
  KNOT_CHECK(x.dim() >= 1 && x.size(-1) == s.in, "{}: input {} does not match grid {} (in = {})", op,
             shape_str(x.shape()), shape_str(grid.shape()), s.in);
  KNOT_CHECK(spline_weight.dim() == 3 && spline_weight.size(1) == s.in && spline_weight.size(2) == s.nb,
             "{}: spline_weight {} does not match (out, in, G+k) = (out, {}, {}) from grid {} and k = {}", op,
             shape_str(spline_weight.shape()), s.in, s.nb, shape_str(grid.shape()), k);
  s.out = spline_weight.size(0);
  const Shape oi{s.out, s.in};
  if (base_weight.defined())
    KNOT_CHECK(base_weight.shape() == oi, "{}: base_weight {} should be (out, in) = {}", op,
               shape_str(base_weight.shape()), shape_str(oi));
  if (spline_scaler.defined())
    KNOT_CHECK(spline_scaler.shape() == oi, "{}: spline_scaler {} should be (out, in) = {}", op,
               shape_str(spline_scaler.shape()), shape_str(oi));
  for (const Tensor* t : {&grid, &base_weight, &spline_weight, &spline_scaler}) {
    if (!t->defined()) continue;
    kernels::check_same_device(op, x, *t);
    kernels::check_same_dtype(op, x, *t);
  }
  KNOT_CHECK(is_floating(x.dtype()), "{}: expected a float input, got {}", op, x.desc());
  return s;
}

Tensor plain(const Tensor& t) { return t.defined() ? t.detach().contiguous() : t; }

Shape out_shape_of(const Tensor& x, int64_t out) {
  Shape s = x.shape();
  s.back() = out;
  return s;
}

}  // namespace

Tensor kan_bspline(const Tensor& x, const Tensor& grid, const Tensor& base_weight, const Tensor& spline_weight,
                   const Tensor& spline_scaler, int k, SplinePath path) {
  static const char* op = "kan_bspline";
  const SplineShapes s = check_spline_args(op, x, grid, base_weight, spline_weight, spline_scaler, k);
  const Tensor x2 = plain(x).reshape({-1, s.in}).contiguous();
  const Tensor g = plain(grid), bw = plain(base_weight), sw = plain(spline_weight), sc = plain(spline_scaler);
  auto fold = [](const Tensor& w, const Tensor& scaler) {
    return scaler.defined() ? kernels::binary(BinaryOp::mul, w, scaler.unsqueeze(-1)) : w;
  };
  Tensor y = kernels::kan_bspline_fwd(x2, g, bw, fold(sw, sc), k, path);
  y = y.reshape(out_shape_of(x, s.out));
  if (!needs_grad({x, base_weight, spline_weight, spline_scaler})) return y;

  const bool gx = x.requires_grad(), gb = base_weight.defined() && base_weight.requires_grad();
  const bool gw = spline_weight.requires_grad(), gs = spline_scaler.defined() && spline_scaler.requires_grad();
  const Shape xshape = x.shape();
  SavedTensor sx(x2), sg(g), sbw(bw), ssw(sw), ssc(sc);
  return attach_grad(y, op, {x, base_weight, spline_weight, spline_scaler}, [=](const Tensor& gy) {
    const Tensor& xv = sx.get(op);
    const Tensor& swv = ssw.get(op);
    const Tensor& scv = ssc.get(op);
    const Tensor g2 = gy.reshape({-1, s.out}).contiguous();
    kernels::SplineGrads r = kernels::kan_bspline_bwd(xv, sg.get(op), sbw.get(op), fold(swv, scv), g2, k, path, gx, gb,
                                                      gw || gs);
    Tensor dsw, dsc;
    if (gw) dsw = scv.defined() ? mul(r.dcoeff, scv.unsqueeze(-1)) : r.dcoeff;
    if (gs) dsc = sum(mul(r.dcoeff, swv), {-1});
    return std::vector<Tensor>{gx ? r.dx.reshape(xshape) : Tensor(), r.dbase_w, dsw, dsc};
  });
}

Tensor bspline_basis(const Tensor& x, const Tensor& grid, int k) {
  KNOT_CHECK(x.dim() == 2 && grid.dim() == 2 && x.size(1) == grid.size(0),
             "bspline_basis: x {} and grid {} should be (N, in) and (in, G+2k+1)", shape_str(x.shape()),
             shape_str(grid.shape()));
  KNOT_CHECK(k >= 0 && k <= basis::kMaxSplineOrder && grid.size(1) >= k + 2,
             "bspline_basis: k = {} does not fit grid {}", k, shape_str(grid.shape()));
  return kernels::bspline_basis(plain(x), plain(grid), k, false);
}

Tensor bspline_basis_deriv(const Tensor& x, const Tensor& grid, int k) {
  KNOT_CHECK(x.dim() == 2 && grid.dim() == 2 && x.size(1) == grid.size(0),
             "bspline_basis_deriv: x {} and grid {} should be (N, in) and (in, G+2k+1)", shape_str(x.shape()),
             shape_str(grid.shape()));
  return kernels::bspline_basis(plain(x), plain(grid), k, true);
}

Tensor bspline_basis_ref(const Tensor& x, const Tensor& grid, int k) {
  KNOT_CHECK(x.dim() == 2 && grid.dim() == 2 && x.size(1) == grid.size(0),
             "bspline_basis_ref: x {} and grid {} should be (N, in) and (in, G+2k+1)", shape_str(x.shape()),
             shape_str(grid.shape()));
  const int64_t nk = grid.size(1);
  const Tensor g = grid.detach();
  const Tensor x3 = unsqueeze(x, -1);  // (N, in, 1)
  // B⁰_j = 1[t_j ≤ x < t_{j+1}], j = 0 … nk−2
  Tensor B = mul(ge(x3.detach(), slice(g, 1, 0, nk - 1)), lt(x3.detach(), slice(g, 1, 1, nk)));
  for (int p = 1; p <= k; ++p) {
    const int64_t n = nk - 1 - p;  // functions of degree p
    const Tensor tj = slice(g, 1, 0, n), tjp = slice(g, 1, p, p + n);
    const Tensor tj1 = slice(g, 1, 1, 1 + n), tjp1 = slice(g, 1, p + 1, p + 1 + n);
    B = add(mul(div(sub(x3, tj), sub(tjp, tj)), slice(B, 2, 0, n)),
            mul(div(sub(tjp1, x3), sub(tjp1, tj1)), slice(B, 2, 1, n + 1)));
  }
  return B;
}

Tensor kan_bspline_ref(const Tensor& x, const Tensor& grid, const Tensor& base_weight, const Tensor& spline_weight,
                       const Tensor& spline_scaler, int k) {
  const SplineShapes s = check_spline_args("kan_bspline_ref", x, grid, base_weight, spline_weight, spline_scaler, k);
  const Tensor x2 = reshape(x, {-1, s.in});
  const Tensor basis = bspline_basis_ref(x2, grid, k);  // (N, in, nb)
  const Tensor coeff = spline_scaler.defined() ? mul(spline_weight, unsqueeze(spline_scaler, -1)) : spline_weight;
  Tensor y = matmul(reshape(basis, {-1, s.in * s.nb}), reshape(coeff, {s.out, s.in * s.nb}), false, true);
  if (base_weight.defined()) y = add(y, matmul(silu(x2), base_weight, false, true));
  return reshape(y, out_shape_of(x, s.out));
}

Tensor kan_basis(const Tensor& x, const Tensor& weight, const BasisEval& basis, const char* op) {
  KNOT_CHECK(weight.dim() == 3 && x.dim() >= 1 && x.size(-1) == weight.size(1) && weight.size(2) == basis.nf,
             "{}: input {} and weight {} should be (..., in) and (out, in, nf = {})", op, shape_str(x.shape()),
             shape_str(weight.shape()), basis.nf);
  kernels::check_same_device(op, x, weight);
  kernels::check_same_dtype(op, x, weight);
  const int64_t in = weight.size(1), out = weight.size(0);
  const Tensor x2 = plain(x).reshape({-1, in}).contiguous(), w = plain(weight);
  Tensor y = kernels::kan_basis_fwd(x2, w, basis).reshape(out_shape_of(x, out));
  if (!needs_grad({x, weight})) return y;
  const bool gx = x.requires_grad(), gw = weight.requires_grad();
  const Shape xshape = x.shape();
  SavedTensor sx(x2), sw(w);
  return attach_grad(y, op, {x, weight}, [=](const Tensor& gy) {
    auto r = kernels::kan_basis_bwd(sx.get(op), sw.get(op), gy.reshape({-1, out}).contiguous(), basis, gx, gw);
    return std::vector<Tensor>{gx ? r[0].reshape(xshape) : Tensor(), r[1]};
  });
}

}  // namespace knot
