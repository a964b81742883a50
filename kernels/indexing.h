// Indexing and joining kernels: concatenation, index_select (gather along a dim) and its
// deterministic scatter-add backward, where and masked_fill. Outputs are new contiguous tensors.
//
// index_select views x as (outer, n, inner) around `dim`, the output as (outer, m, inner):
//   out[o, i, c] = x[o, index[i], c]           gx[o, j, c] = Σ_{i : index[i] == j} g[o, i, c]
// The backward sums each destination element in increasing i on a single thread, so the result
// does not depend on the thread count (no atomics).
#pragma once

#include <vector>

#include "kernels/dispatch.h"
#include "kernels/elementwise.h"

namespace knot::kernels {

#define KNOT_INDEXING_KERNELS(X)                                                                                \
  /* x: (..., n, ...) any dtype; index: (m) i32/i64 in [0, n) -> (..., m, ...) */                               \
  X(Tensor, index_select, (const Tensor& x, int dim, const Tensor& index))                                      \
  /* g: (..., m, ...) float; index: (m) -> gx: (..., n, ...) with n = src_size, scatter-add */                  \
  X(Tensor, index_select_bwd, (const Tensor& g, int dim, const Tensor& index, int64_t src_size))                \
  /* cond: any numeric dtype (non-zero = true); a, b: same dtype; all three broadcast -> out */                 \
  X(Tensor, where, (const Tensor& cond, const Tensor& a, const Tensor& b))                                      \
  /* x: any shape; mask: broadcastable to x, any numeric dtype -> x with value where mask != 0 */               \
  X(Tensor, masked_fill, (const Tensor& x, const Tensor& mask, double value))

namespace cpu { KNOT_INDEXING_KERNELS(KNOT_DECLARE_KERNEL) }
namespace cuda { KNOT_INDEXING_KERNELS(KNOT_DECLARE_KERNEL) }

// index_select's plan, alike on every backend (kernels/indexing_plan.cpp): the source seen as
// (outer, n, inner) around dim and the selection as (outer, m, inner), with both shapes.
struct SelectPlan {
  int64_t outer = 1, n = 0, m = 0, inner = 1;
  Shape source_shape, selected_shape;
};
// Forward: x's shape and the index length m.
SelectPlan select_plan(const Shape& x_shape, int dim, int64_t m);
// Backward: the gradient's shape (its size along dim must be the index length: an error naming both
// otherwise) and the source's size n along dim.
SelectPlan select_bwd_plan(const Shape& g_shape, int dim, int64_t index_numel, int64_t src_size);
// The index (1-D, i32 or i64, on any device) as int64 on the host, every entry checked against
// [0, size): an error naming the entry, its position and the dim otherwise.
std::vector<int64_t> select_indices(const Tensor& index, int dim, int64_t size);

// xs: tensors equal in every dim but `dim` (already checked) -> out: out_shape, contiguous.
// Device-independent: each input is copied into its slab [off, off + size) of out along dim, a
// strided view with out's strides, so the device's copy kernel handles any input layout.
inline Tensor cat(const std::vector<Tensor>& xs, int dim, const Shape& out_shape) {
  for (const Tensor& x : xs) check_same_device("cat", xs.front(), x);
  Tensor out = empty(out_shape, xs.front().dtype(), xs.front().device());
  int64_t off = 0;
  for (const Tensor& x : xs) {
    const Tensor slab = make_view(out, x.shape(), out.strides(), out.offset() + off * out.strides()[dim]);
    if (x.numel() > 0) copy(slab, x);
    off += x.shape()[dim];
  }
  return out;
}
inline Tensor index_select(const Tensor& x, int dim, const Tensor& index) {
  check_same_device("index_select", x, index);
  return KNOT_DISPATCH(x, index_select(x, dim, index));
}
inline Tensor index_select_bwd(const Tensor& g, int dim, const Tensor& index, int64_t src_size) {
  check_same_device("index_select", g, index);
  return KNOT_DISPATCH(g, index_select_bwd(g, dim, index, src_size));
}
inline Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_same_device("where", cond, a);
  check_same_device("where", a, b);
  check_same_dtype("where", a, b);
  return KNOT_DISPATCH(a, where(cond, a, b));
}
inline Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  check_same_device("masked_fill", x, mask);
  return KNOT_DISPATCH(x, masked_fill(x, mask, value));
}

}  // namespace knot::kernels
