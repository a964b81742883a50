// Shape helpers: numel, contiguous strides, broadcasting, dim wrapping.
#include "core/shape.h"

#include <algorithm>
#include <climits>
#include <cstdint>

#include "core/error.h"

namespace knot {

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s)
    if (__builtin_mul_overflow(n, d, &n))
      KNOT_FAIL("shape {} has more elements than fit in 64 bits", shape_str(s));
  return n;
}

size_t shape_nbytes(const Shape& s, size_t itemsize, const char* op) {
  uint64_t n = itemsize;
  bool overflow = false;
  for (int64_t d : s) {
    KNOT_CHECK(d >= 0, "{}: negative size in shape {}", op, shape_str(s));
    overflow = overflow || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n);
  }
  // Also above int64's range: element offsets and numel() are int64.
  KNOT_CHECK(!overflow && n <= static_cast<uint64_t>(INT64_MAX), "{}: shape {} x {} bytes overflows {} bits", op,
             shape_str(s), itemsize, overflow ? 64 : 63);
  return static_cast<size_t>(n);
}

std::string bytes_str(uint64_t n) {
  if (n < 1024) return fmt::format("{} bytes", n);
  const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(n);
  int u = -1;
  while (v >= 1024 && u < 5) v /= 1024, ++u;
  return fmt::format("{:.1f} {}", v, units[u]);
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (int i = static_cast<int>(s.size()) - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= std::max<int64_t>(s[i], 1);
  }
  return st;
}

std::string shape_str(const Shape& s) {
  if (s.size() == 1) return fmt::format("({},)", s[0]);
  return fmt::format("({})", fmt::join(s, ", "));
}

int wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  const int64_t n = std::max<int64_t>(ndim, 1);
  KNOT_CHECK(dim >= -n && dim < n, "{}: dim {} out of range for a tensor with {} dims", op, dim, ndim);
  return static_cast<int>(dim < 0 ? dim + n : dim);
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    KNOT_CHECK(da == db || da == 1 || db == 1, "{}: shapes {} and {} cannot be broadcast", op,
               shape_str(a), shape_str(b));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

void check_shape(const Shape& s, const char* op) {
  KNOT_CHECK(static_cast<int>(s.size()) <= kMaxDims, "{}: shape {} has {} dims; at most {} are supported",
             op, shape_str(s), s.size(), kMaxDims);
  for (int64_t d : s) KNOT_CHECK(d >= 0, "{}: negative size in shape {}", op, shape_str(s));
}

}  // namespace knot
