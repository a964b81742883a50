// The reduction plans every backend shares (see reduce.h): which dims a reduction covers, x with
// them moved last, the reduced shape, and a shape's (outer, n, inner) split around one dim. Computed
// here once; kernels/cpu/reduce.cpp, softmax.cpp and their .cu twins use them.
#include "kernels/reduce.h"

#include <algorithm>

namespace knot::kernels {

std::vector<int> normalize_dims(const std::vector<int64_t>& dims, int64_t ndim, const char* op) {
  std::vector<int> out;
  if (dims.empty()) {
    for (int d = 0; d < ndim; ++d) out.push_back(d);
    return out;
  }
  for (int64_t d : dims) out.push_back(wrap_dim(d, ndim, op));
  std::sort(out.begin(), out.end());
  KNOT_CHECK(std::adjacent_find(out.begin(), out.end()) == out.end(), "{}: a dim is repeated in the list", op);
  return out;
}

Tensor reduced_dims_last(const Tensor& x, const std::vector<int>& dims) {
  const int nd = static_cast<int>(x.dim());
  std::vector<int64_t> order;
  for (int d = 0; d < nd; ++d)
    if (!std::binary_search(dims.begin(), dims.end(), d)) order.push_back(d);
  for (int d : dims) order.push_back(d);
  bool identity = true;
  for (int d = 0; d < nd; ++d) identity &= order[d] == d;
  Tensor t = x.detach();  // kernels record no graph
  if (!identity) t = permuted(t, order);
  return dense(t);  // copies on the tensor's own device
}

Shape reduced_shape(const Shape& s, const std::vector<int>& dims) {
  Shape out = s;
  for (int d : dims) out[d] = 1;
  return out;
}

DimSplit split_at_dim(const Shape& s, int dim) {
  DimSplit sp;
  for (int d = 0; d < static_cast<int>(s.size()); ++d) {
    if (d < dim) sp.outer *= s[d];
    else if (d == dim) sp.n = s[d];
    else sp.inner *= s[d];
  }
  return sp;
}

}  // namespace knot::kernels
