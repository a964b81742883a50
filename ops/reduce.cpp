// Reductions with their gradients.
//   sum:        g broadcast back
//   var:        dvar/dx = 2·(x − x̄)/(n − correction)
//   logsumexp:  dlse/dx = exp(x − lse) = softmax(x)
//   max/min:    the gradient goes to the first index of the extreme value (ties), zero elsewhere
#include "ops/reduce.h"

#include <cmath>

#include "kernels/reduce.h"
#include "kernels/softmax.h"
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

// A 0-dim tensor is reduced as a one-element 1-D tensor (then the result is made 0-dim again).
Tensor at_least_1d(const Tensor& x) { return x.dim() == 0 ? reshape(x, {1}) : x; }
Tensor restore_0d(const Tensor& r, const Tensor& x) { return x.dim() == 0 ? reshape(r, {}) : r; }

MaxResult max_min(const Tensor& x_in, int64_t dim, bool keepdim, bool take_max) {
  const char* op = take_max ? "max" : "min";
  const Tensor x = at_least_1d(x_in);
  const int d = wrap_dim(dim, x.dim(), op);
  KNOT_CHECK(x.shape()[d] > 0, "{}: cannot reduce dim {} of size 0 in {}", op, dim, shape_str(x_in.shape()));
  kernels::ValuesIndices vi = kernels::max_min(x, d, take_max);
  if (is_floating(x.dtype()) && needs_grad({x})) {
    SavedTensor idx(vi.indices);
    const Shape xs = x.shape();
    attach_grad(vi.values, op, {x}, [idx, xs, d, op](const Tensor& g) {
      return std::vector<Tensor>{kernels::max_min_bwd(g, idx.get(op), xs, d)};
    });
  }
  return {restore_0d(finish(vi.values, {d}, keepdim), x_in), restore_0d(finish(vi.indices, {d}, keepdim), x_in)};
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
  // An empty reduction has no mean: NaN, as in NumPy and PyTorch.
  return mul(sum(x, dims_in, keepdim), n == 0 ? std::nan("") : 1.0 / static_cast<double>(n));
}

Tensor var(const Tensor& x, const std::vector<int64_t>& dims_in, bool unbiased, bool keepdim) {
  KNOT_CHECK(is_floating(x.dtype()), "var: expected a float tensor, got {}", x.desc());
  const std::vector<int> dims = kernels::normalize_dims(dims_in, x.dim(), "var");
  const int64_t correction = unbiased ? 1 : 0;
  Tensor r = kernels::var(x, dims, correction);
  if (needs_grad({x})) {
    SavedTensor sx(x);
    const std::vector<int64_t> dims64(dims.begin(), dims.end());
    const double scale = 2.0 / static_cast<double>(reduced_count(x, dims) - correction);
    attach_grad(r, "var", {x}, [sx, dims64, scale](const Tensor& g) {
      const Tensor& xv = sx.get("var");
      // g keeps the reduced dims as size 1 here, so it broadcasts against x.
      return std::vector<Tensor>{mul(mul(sub(xv, mean(xv, dims64, true)), g), scale)};
    });
  }
  return finish(r, dims, keepdim);
}

Tensor logsumexp(const Tensor& x_in, int64_t dim, bool keepdim) {
  KNOT_CHECK(is_floating(x_in.dtype()), "logsumexp: expected a float tensor, got {}", x_in.desc());
  const Tensor x = at_least_1d(x_in);
  const int d = wrap_dim(dim, x.dim(), "logsumexp");
  Tensor r = kernels::logsumexp(x, d);
  if (needs_grad({x})) {
    SavedTensor sx(x), slse(r.detach());
    attach_grad(r, "logsumexp", {x}, [sx, slse](const Tensor& g) {
      return std::vector<Tensor>{mul(g, exp(sub(sx.get("logsumexp"), slse.get("logsumexp"))))};
    });
  }
  return restore_0d(finish(r, {d}, keepdim), x_in);
}

MaxResult max(const Tensor& x, int64_t dim, bool keepdim) { return max_min(x, dim, keepdim, true); }
MaxResult min(const Tensor& x, int64_t dim, bool keepdim) { return max_min(x, dim, keepdim, false); }

Tensor max(const Tensor& x) {
  KNOT_CHECK(x.numel() > 0, "max: expected a non-empty tensor, got {}", x.desc());
  return max_min(reshape(x, {-1}), 0, false, true).values;  // 1-D reduced to 0-dim
}

Tensor argmax(const Tensor& x_in, int64_t dim, bool keepdim) {
  const Tensor x = at_least_1d(x_in.detach());
  const int d = wrap_dim(dim, x.dim(), "argmax");
  KNOT_CHECK(x.shape()[d] > 0, "argmax: cannot reduce dim {} of size 0 in {}", dim, shape_str(x_in.shape()));
  return restore_0d(finish(kernels::max_min(x, d, true).indices, {d}, keepdim), x_in);
}

}  // namespace knot
