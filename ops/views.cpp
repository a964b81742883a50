// Views, copies and conversions, with their gradients.
#include "ops/views.h"

#include <numeric>

#include "kernels/elementwise.h"
#include "ops/ops.h"

namespace knot {
namespace {

Tensor copy_to_new(const Tensor& x, DType dt, Device d) {
  Tensor out = empty(x.shape(), dt, d);
  kernels::copy(out, x);
  return out;
}

Shape infer_shape(const Shape& s, int64_t numel, const Tensor& x, const char* op) {
  Shape out = s;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      KNOT_CHECK(infer < 0, "{}: only one dim can be -1 in {}", op, shape_str(s));
      infer = static_cast<int>(i);
    } else {
      KNOT_CHECK(out[i] >= 0, "{}: bad size {} in {}", op, out[i], shape_str(s));
      known *= out[i];
    }
  }
  if (infer >= 0) {
    KNOT_CHECK(known != 0 && numel % known == 0, "{}: cannot reshape {} into {}", op, shape_str(x.shape()),
               shape_str(s));
    out[infer] = numel / known;
  }
  KNOT_CHECK(shape_numel(out) == numel, "{}: cannot reshape {} ({} elements) into {}", op, shape_str(x.shape()),
             numel, shape_str(s));
  check_shape(out, op);
  return out;
}

}  // namespace

Tensor contiguous(const Tensor& x) {
  if (x.is_contiguous()) return x;
  Tensor out = copy_to_new(x, x.dtype(), x.device());
  return attach_grad(out, "contiguous", {x}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

Tensor clone(const Tensor& x) {
  Tensor out = copy_to_new(x, x.dtype(), x.device());
  return attach_grad(out, "clone", {x}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

Tensor to_dtype(const Tensor& x, DType t) {
  if (x.dtype() == t) return x;
  Tensor out = copy_to_new(x, t, x.device());
  if (!is_floating(t)) return out;
  const DType orig = x.dtype();
  return attach_grad(out, "to_dtype", {x}, [orig](const Tensor& g) { return std::vector<Tensor>{to_dtype(g, orig)}; });
}

Tensor to_device(const Tensor& x, Device d) {
  if (x.device() == d) return x;
  Tensor out = copy_to_new(x, x.dtype(), d);
  const Device orig = x.device();
  return attach_grad(out, "to_device", {x}, [orig](const Tensor& g) { return std::vector<Tensor>{to_device(g, orig)}; });
}

Tensor view(const Tensor& x, Shape s) {
  const Shape shape = infer_shape(s, x.numel(), x, "view");
  KNOT_CHECK(x.is_contiguous(), "view: tensor {} with strides {} is not contiguous; use reshape (which copies)",
             shape_str(x.shape()), shape_str(x.strides()));
  Tensor out = make_view(x, shape, contiguous_strides(shape), x.offset());
  const Shape orig = x.shape();
  return attach_grad(out, "view", {x}, [orig](const Tensor& g) { return std::vector<Tensor>{reshape(g, orig)}; });
}

Tensor reshape(const Tensor& x, Shape s) {
  // Resolve -1 and check sizes here so errors name reshape, not the view it forwards to.
  const Shape shape = infer_shape(s, x.numel(), x, "reshape");
  if (x.is_contiguous()) return view(x, shape);
  return view(contiguous(x), shape);
}

Tensor flatten(const Tensor& x, int64_t start, int64_t end) {
  if (x.dim() == 0) return reshape(x, {1});
  const int s = wrap_dim(start, x.dim(), "flatten"), e = wrap_dim(end, x.dim(), "flatten");
  KNOT_CHECK(s <= e, "flatten: start dim {} is after end dim {}", start, end);
  Shape out;
  for (int d = 0; d < s; ++d) out.push_back(x.shape()[d]);
  int64_t m = 1;
  for (int d = s; d <= e; ++d) m *= x.shape()[d];
  out.push_back(m);
  for (int d = e + 1; d < x.dim(); ++d) out.push_back(x.shape()[d]);
  return reshape(x, out);
}

Tensor transpose(const Tensor& x, int64_t d0, int64_t d1) {
  const int a = wrap_dim(d0, x.dim(), "transpose"), b = wrap_dim(d1, x.dim(), "transpose");
  if (x.dim() < 2 || a == b) return x;
  Shape shape = x.shape(), strides = x.strides();
  std::swap(shape[a], shape[b]);
  std::swap(strides[a], strides[b]);
  Tensor out = make_view(x, shape, strides, x.offset());
  return attach_grad(out, "transpose", {x}, [a, b](const Tensor& g) { return std::vector<Tensor>{transpose(g, a, b)}; });
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& order) {
  KNOT_CHECK(static_cast<int64_t>(order.size()) == x.dim(), "permute: order has {} dims, tensor {} has {}",
             order.size(), shape_str(x.shape()), x.dim());
  std::vector<int64_t> inv(order.size(), -1);
  Shape shape(order.size()), strides(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    const int d = wrap_dim(order[i], x.dim(), "permute");
    KNOT_CHECK(inv[d] < 0, "permute: dim {} appears twice in the order", d);
    inv[d] = static_cast<int64_t>(i);
    shape[i] = x.shape()[d];
    strides[i] = x.strides()[d];
  }
  Tensor out = make_view(x, shape, strides, x.offset());
  return attach_grad(out, "permute", {x}, [inv](const Tensor& g) { return std::vector<Tensor>{permute(g, inv)}; });
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  KNOT_CHECK(x.dim() > 0, "slice: cannot slice a 0-dim tensor");
  const int d = wrap_dim(dim, x.dim(), "slice");
  KNOT_CHECK(step > 0, "slice: step must be positive, got {}", step);
  const int64_t n = x.shape()[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape shape = x.shape(), strides = x.strides();
  shape[d] = (end - start + step - 1) / step;
  strides[d] *= step;
  Tensor out = make_view(x, shape, strides, x.offset() + start * x.strides()[d]);
  const Shape orig = x.shape();
  return attach_grad(out, "slice", {x}, [=](const Tensor& g) {
    Tensor gx = zeros(orig, g.dtype(), g.device());
    kernels::copy(slice(gx, d, start, end, step), g);
    return std::vector<Tensor>{gx};
  });
}

Tensor select(const Tensor& x, int64_t dim, int64_t index) {
  KNOT_CHECK(x.dim() > 0, "select: cannot select from a 0-dim tensor");
  const int d = wrap_dim(dim, x.dim(), "select");
  const int64_t n = x.shape()[d];
  KNOT_CHECK(index >= -n && index < n, "select: index {} out of range for dim {} of size {}", index, d, n);
  if (index < 0) index += n;
  return squeeze(slice(x, d, index, index + 1), d);
}

Tensor expand(const Tensor& x, const Shape& s) {
  KNOT_CHECK(s.size() >= static_cast<size_t>(x.dim()), "expand: cannot expand {} to fewer dims {}",
             shape_str(x.shape()), shape_str(s));
  const size_t lead = s.size() - x.dim();
  Shape shape(s.size()), strides(s.size(), 0);
  for (size_t i = 0; i < s.size(); ++i) {
    if (i < lead) {
      KNOT_CHECK(s[i] >= 0, "expand: new leading dim {} cannot be -1 in {}", i, shape_str(s));
      shape[i] = s[i];
      continue;
    }
    const int64_t have = x.shape()[i - lead];
    const int64_t want = s[i] == -1 ? have : s[i];
    KNOT_CHECK(have == want || have == 1, "expand: cannot expand {} to {}", shape_str(x.shape()), shape_str(s));
    shape[i] = want;
    strides[i] = have == want ? x.strides()[i - lead] : 0;
  }
  check_shape(shape, "expand");  // more than kMaxDims would overrun the strided walkers
  Tensor out = make_view(x, shape, strides, x.offset());
  const Shape orig = x.shape();
  return attach_grad(out, "expand", {x}, [orig](const Tensor& g) { return std::vector<Tensor>{sum_to(g, orig)}; });
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  const int d = wrap_dim(dim, x.dim(), "squeeze");
  if (x.dim() == 0 || x.shape()[d] != 1) return x;
  Shape shape = x.shape(), strides = x.strides();
  shape.erase(shape.begin() + d);
  strides.erase(strides.begin() + d);
  Tensor out = make_view(x, shape, strides, x.offset());
  return attach_grad(out, "squeeze", {x}, [d](const Tensor& g) { return std::vector<Tensor>{unsqueeze(g, d)}; });
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  const int d = wrap_dim(dim, x.dim() + 1, "unsqueeze");
  Shape shape = x.shape(), strides = x.strides();
  const int64_t st = d < x.dim() ? x.strides()[d] * x.shape()[d] : 1;
  shape.insert(shape.begin() + d, 1);
  strides.insert(strides.begin() + d, st);
  check_shape(shape, "unsqueeze");
  Tensor out = make_view(x, shape, strides, x.offset());
  return attach_grad(out, "unsqueeze", {x}, [d](const Tensor& g) { return std::vector<Tensor>{squeeze(g, d)}; });
}

}  // namespace knot
