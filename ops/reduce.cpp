// Reductions with their gradients.
#include "ops/reduce.h"

#include "kernels/reduce.h"
#include "ops/ops.h"

namespace knot {
namespace {

// Removes the reduced (size-1) dims unless keepdim.
Tensor finish(const Tensor& r, const std::vector<int>& dims, bool keepdim) {
  if (keepdim) return r;
  Shape s;
  for (int64_t d = 0; d < r.dim(); ++d)
    if (!std::binary_search(dims.begin(), dims.end(), static_cast<int>(d))) s.push_back(r.shape()[d]);
  return reshape(r, s);
}

int64_t reduced_count(const Tensor& x, const std::vector<int>& dims) {
  int64_t n = 1;
  for (int d : dims) n *= x.shape()[d];
  return n;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  const std::vector<int> dims = kernels::normalize_dims(dims_in, x.dim(), "sum");
  Tensor r = kernels::sum(x, dims);
  const Shape xs = x.shape();
  attach_grad(r, "sum", {x}, [xs](const Tensor& g) { return std::vector<Tensor>{expand(g, xs)}; });
  return finish(r, dims, keepdim);
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  KNOT_CHECK(is_floating(x.dtype()), "mean: expected a float tensor, got {}", x.desc());
  const std::vector<int> dims = kernels::normalize_dims(dims_in, x.dim(), "mean");
  const int64_t n = reduced_count(x, dims);
  return mul(sum(x, dims_in, keepdim), 1.0 / static_cast<double>(std::max<int64_t>(n, 1)));
}

}  // namespace knot
