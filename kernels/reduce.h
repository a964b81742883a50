// Reduction kernels. `dims` are wrapped, sorted and unique; outputs are contiguous and keep the
// reduced dims as size 1 (the op layer squeezes them when keepdim is false).
#pragma once

#include <vector>

#include "kernels/dispatch.h"

namespace knot::kernels {

#define KNOT_REDUCE_KERNELS                                          \
  /* x: any float/int tensor -> Σ over dims (f32 sums accumulate in f64) */ \
  Tensor sum(const Tensor& x, const std::vector<int>& dims);

namespace cpu { KNOT_REDUCE_KERNELS }
namespace cuda { KNOT_REDUCE_KERNELS }

inline Tensor sum(const Tensor& x, const std::vector<int>& dims) { return KNOT_DISPATCH(x, sum(x, dims)); }

// Wraps, sorts and de-duplicates dims; empty means all dims.
std::vector<int> normalize_dims(const std::vector<int64_t>& dims, int64_t ndim, const char* op);
// x's shape with the reduced dims set to 1.
Shape reduced_shape(const Shape& s, const std::vector<int>& dims);

}  // namespace knot::kernels
