// Walks the elements of a strided view in row-major logical order, calling fn(storage_offset)
// with the element's offset (in elements) from the storage base. Used for gathers of
// non-contiguous views; kernels use their own contiguous fast paths.
#pragma once

#include <cstdint>

#include "core/shape.h"

namespace knot {

template <typename F>
void for_each_offset(const Shape& shape, const Shape& strides, int64_t offset, F&& fn) {
  const int nd = static_cast<int>(shape.size());
  const int64_t n = shape_numel(shape);
  if (n == 0) return;
  if (nd == 0) { fn(offset); return; }
  int64_t idx[kMaxDims] = {0};
  int64_t off = offset;
  const int64_t inner = shape[nd - 1], inner_stride = strides[nd - 1];
  for (int64_t done = 0; done < n; done += inner) {
    for (int64_t i = 0; i < inner; ++i) fn(off + i * inner_stride);
    // advance the outer dims like an odometer
    for (int d = nd - 2; d >= 0; --d) {
      off += strides[d];
      if (++idx[d] < shape[d]) break;
      off -= strides[d] * shape[d];
      idx[d] = 0;
    }
  }
}

}  // namespace knot
