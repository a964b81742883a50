// Shapes and strides (in elements, not bytes). At most kMaxDims dims; a 0-dim shape is a scalar.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace knot {

constexpr int kMaxDims = 6;
using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& s);
std::string shape_str(const Shape& s);  // "(4, 3)"
// Wraps a possibly negative dim into [0, ndim); throws "op: dim d out of range for ndim n".
int wrap_dim(int64_t dim, int64_t ndim, const char* op);
// NumPy broadcasting of two shapes; throws naming op and both shapes when incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Checks ndim <= kMaxDims and non-negative sizes.
void check_shape(const Shape& s, const char* op);

}  // namespace knot
