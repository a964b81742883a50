// Reduction kernels. `dims` are wrapped, sorted and unique; outputs are contiguous and keep the
// reduced dims as size 1 (the op layer squeezes them when keepdim is false).
//   sum:      Σ over dims
//   var:      Σ (x − x̄)² / (n − correction), two passes (mean, then squared deviations)
//   max_min:  values and i64 indices along one dim; ties keep the first index, NaN wins
//   max_min_bwd: scatters the values' gradient back to the winning index
#pragma once

#include <vector>

#include "kernels/dispatch.h"

namespace knot::kernels {

struct ValuesIndices {
  Tensor values;   // x's dtype, x's shape with dim set to 1
  Tensor indices;  // i64, same shape
};

#define KNOT_REDUCE_KERNELS(X)                                                                                  \
  /* x: any float/int tensor -> Σ over dims (f32 sums accumulate in f64) */                                     \
  X(Tensor, sum, (const Tensor& x, const std::vector<int>& dims))                                               \
  /* x: float -> Σ (x − mean)² / (n − correction) over dims (f32 accumulates in f64) */                         \
  X(Tensor, var, (const Tensor& x, const std::vector<int>& dims, int64_t correction))                           \
  /* x: (outer, n, inner) around dim, any dtype -> max (or min) and its first index, (outer, 1, inner) */       \
  X(ValuesIndices, max_min, (const Tensor& x, int dim, bool take_max))                                          \
  /* g, indices: x_shape with dim set to 1 -> gx: x_shape, zero except gx[.., indices, ..] = g */               \
  X(Tensor, max_min_bwd, (const Tensor& g, const Tensor& indices, const Shape& x_shape, int dim))

namespace cpu { KNOT_REDUCE_KERNELS(KNOT_DECLARE_KERNEL) }
namespace cuda { KNOT_REDUCE_KERNELS(KNOT_DECLARE_KERNEL) }

inline Tensor sum(const Tensor& x, const std::vector<int>& dims) { return KNOT_DISPATCH(x, sum(x, dims)); }
inline Tensor var(const Tensor& x, const std::vector<int>& dims, int64_t correction) {
  return KNOT_DISPATCH(x, var(x, dims, correction));
}
inline ValuesIndices max_min(const Tensor& x, int dim, bool take_max) { return KNOT_DISPATCH(x, max_min(x, dim, take_max)); }
inline Tensor max_min_bwd(const Tensor& g, const Tensor& indices, const Shape& x_shape, int dim) {
  check_same_device("max", g, indices);
  return KNOT_DISPATCH(g, max_min_bwd(g, indices, x_shape, dim));
}

// A shape seen as (outer, n, inner) around one dim: element (o, j, i) of a contiguous tensor sits
// at o·n·inner + j·inner + i, so a "row" along dim is inner-strided.
struct DimSplit {
  int64_t outer = 1, n = 1, inner = 1;
  int64_t rows() const { return outer * inner; }
  // Offset of element 0 of row r (r in [0, outer·inner)).
  int64_t row_base(int64_t r) const { return (r / inner) * n * inner + r % inner; }
};
DimSplit split_at_dim(const Shape& s, int dim);

// Wraps, sorts and de-duplicates dims; empty means all dims.
std::vector<int> normalize_dims(const std::vector<int64_t>& dims, int64_t ndim, const char* op);
// x made contiguous (on its own device) with the reduced dims moved last, so each output element
// reduces one contiguous row; no copy when x is contiguous and the reduced dims already trail.
Tensor reduced_dims_last(const Tensor& x, const std::vector<int>& dims);
// x's shape with the reduced dims set to 1.
Shape reduced_shape(const Shape& s, const std::vector<int>& dims);

}  // namespace knot::kernels
