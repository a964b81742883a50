// Shapes and strides (in elements, not bytes). At most kMaxDims dims; a 0-dim shape is a scalar.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace knot {

constexpr int kMaxDims = 6;
using Shape = std::vector<int64_t>;

// The element count; a shape whose count does not fit int64 is an error naming it.
int64_t shape_numel(const Shape& s);
// numel × itemsize, overflow-checked: "op: shape (4611686018427387904, 4611686018427387904) x 4
// bytes overflows 64 bits" instead of a wrapped count. Sizes must be non-negative (check_shape).
size_t shape_nbytes(const Shape& s, size_t itemsize, const char* op);
// "12.5 GiB", "640 bytes": a byte count for messages.
std::string bytes_str(uint64_t nbytes);
Shape contiguous_strides(const Shape& s);
std::string shape_str(const Shape& s);  // "(4, 3)"
// Wraps a possibly negative dim into [0, ndim); throws "op: dim d out of range for ndim n".
int wrap_dim(int64_t dim, int64_t ndim, const char* op);
// NumPy broadcasting of two shapes; throws naming op and both shapes when incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Checks ndim <= kMaxDims and non-negative sizes.
void check_shape(const Shape& s, const char* op);

}  // namespace knot
