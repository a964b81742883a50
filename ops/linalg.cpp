// matmul and linear with their gradients (transposes passed as GEMM flags).
#include "ops/linalg.h"

#include <algorithm>

#include "kernels/linalg.h"
#include "ops/ops.h"

namespace knot {
namespace {

// Batched GEMM on >= 2-D operands.
Tensor matmul_nd(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  // A batched a times a plain matrix b is one big GEMM over the folded rows of a.
  if (a.dim() > 2 && b.dim() == 2 && !ta) {
    Shape out_shape(a.shape().begin(), a.shape().end() - 1);
    const int64_t rows = shape_numel(out_shape);  // not -1: K may be 0
    out_shape.push_back(b.size(tb ? 0 : 1));
    return reshape(matmul_nd(reshape(a, {rows, a.size(-1)}), b, false, tb), out_shape);
  }
  Tensor out = kernels::matmul(a, b, ta, tb);
  if (!needs_grad({a, b})) return out;
  const bool ga = a.requires_grad(), gb = b.requires_grad();
  const Shape sa = a.shape(), sb = b.shape();
  SavedTensor xa = gb ? SavedTensor(a) : SavedTensor(), xb = ga ? SavedTensor(b) : SavedTensor();
  return attach_grad(out, "matmul", {a, b}, [=](const Tensor& g) {
    Tensor da, db;
    if (ga) {
      const Tensor& bv = xb.get("matmul");
      da = ta ? matmul_nd(bv, g, tb, true) : matmul_nd(g, bv, false, !tb);
      da = sum_to(da, sa);
    }
    if (gb) {
      const Tensor& av = xa.get("matmul");
      db = tb ? matmul_nd(g, av, true, ta) : matmul_nd(av, g, !ta, false);
      db = sum_to(db, sb);
    }
    return std::vector<Tensor>{da, db};
  });
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  KNOT_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: operands must have at least 1 dim, got {} and {}",
             shape_str(a.shape()), shape_str(b.shape()));
  // Shape checks on the caller's shapes: below, 1-D operands are unsqueezed and a batched a times a
  // 2-D b is folded into one matrix, so the kernel would report shapes the caller never passed.
  const int64_t ka = a.dim() == 1 ? a.size(0) : a.size(ta ? -2 : -1);
  const int64_t kb = b.dim() == 1 ? b.size(0) : b.size(tb ? -1 : -2);
  KNOT_CHECK(ka == kb, "matmul: inner dims differ: {}{} x {}{}", shape_str(a.shape()), ta && a.dim() > 1 ? "ᵀ" : "",
             shape_str(b.shape()), tb && b.dim() > 1 ? "ᵀ" : "");
  for (int64_t i = 3; i <= std::min(a.dim(), b.dim()); ++i) {
    const int64_t da = a.size(-i), db = b.size(-i);
    KNOT_CHECK(da == db || da == 1 || db == 1, "matmul: batch dims of {} and {} cannot be broadcast",
               shape_str(a.shape()), shape_str(b.shape()));
  }
  if (a.dim() == 1 && b.dim() == 1) return sum(mul(a, b));
  if (a.dim() == 1) return squeeze(matmul_nd(unsqueeze(a, 0), b, false, tb), -2);
  if (b.dim() == 1) return squeeze(matmul_nd(a, unsqueeze(b, -1), ta, false), -1);
  return matmul_nd(a, b, ta, tb);
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  KNOT_CHECK(w.dim() == 2, "linear: weight must be (out, in), got {}", shape_str(w.shape()));
  KNOT_CHECK(x.dim() >= 1 && x.size(-1) == w.size(1), "linear: input {} does not match weight {} (in = {})",
             shape_str(x.shape()), shape_str(w.shape()), w.size(1));
  Tensor y = matmul(x, w, false, true);
  if (b.defined()) {
    KNOT_CHECK(b.dim() == 1 && b.size(0) == w.size(0), "linear: bias {} does not match weight {}", shape_str(b.shape()),
               shape_str(w.shape()));
    y = add(y, b);
  }
  return y;
}

}  // namespace knot
