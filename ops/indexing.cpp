// Joins and gathers with their gradients: cat/stack (backward slices the gradient), index_select
// (backward is a deterministic scatter-add), where and masked_fill (backward routes or zeroes
// the gradient with the same condition).
#include "ops/indexing.h"

#include "kernels/indexing.h"
#include "ops/ops.h"

namespace knot {

Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
  KNOT_CHECK(!xs.empty(), "cat: expected at least one tensor, got none");
  const Tensor& x0 = xs.front();
  KNOT_CHECK(x0.dim() > 0, "cat: cannot concatenate 0-dim tensors (use stack)");
  const int d = wrap_dim(dim, x0.dim(), "cat");
  Shape out_shape = x0.shape();
  out_shape[d] = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    KNOT_CHECK(x.dtype() == x0.dtype(), "cat: tensor {} is {} but tensor 0 is {}", i, dtype_name(x.dtype()),
               dtype_name(x0.dtype()));
    bool same = x.dim() == x0.dim();
    for (int64_t k = 0; same && k < x.dim(); ++k) same = k == d || x.shape()[k] == x0.shape()[k];
    KNOT_CHECK(same, "cat: tensor {} has shape {} but tensor 0 has shape {}; they may differ only in dim {}", i,
               shape_str(x.shape()), shape_str(x0.shape()), d);
    out_shape[d] += x.shape()[d];
  }
  Tensor out = kernels::cat(xs, d, out_shape);
  if (!needs_grad(xs)) return out;
  std::vector<int64_t> sizes;
  std::vector<bool> wants;
  for (const Tensor& x : xs) {
    sizes.push_back(x.shape()[d]);
    wants.push_back(x.requires_grad());
  }
  return attach_grad(out, "cat", xs, [d, sizes, wants](const Tensor& g) {
    std::vector<Tensor> grads(sizes.size());
    int64_t start = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (wants[i]) grads[i] = slice(g, d, start, start + sizes[i]);
      start += sizes[i];
    }
    return grads;
  });
}

Tensor stack(const std::vector<Tensor>& xs, int64_t dim) {
  KNOT_CHECK(!xs.empty(), "stack: expected at least one tensor, got none");
  const Tensor& x0 = xs.front();
  const int d = wrap_dim(dim, x0.dim() + 1, "stack");
  std::vector<Tensor> parts;
  parts.reserve(xs.size());
  for (size_t i = 0; i < xs.size(); ++i) {
    KNOT_CHECK(xs[i].shape() == x0.shape(), "stack: tensor {} has shape {} but tensor 0 has shape {}; all must match",
               i, shape_str(xs[i].shape()), shape_str(x0.shape()));
    parts.push_back(unsqueeze(xs[i], d));
  }
  return cat(parts, d);
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  KNOT_CHECK(x.dim() >= 1, "index_select: input must have at least one dim, got shape {}", shape_str(x.shape()));
  const int d = wrap_dim(dim, x.dim(), "index_select");
  KNOT_CHECK(index.dim() == 1, "index_select: index must be 1-D, got shape {}", shape_str(index.shape()));
  KNOT_CHECK(is_integral(index.dtype()), "index_select: index must be i32 or i64, got {}", dtype_name(index.dtype()));
  Tensor out = kernels::index_select(x, d, index);
  if (!needs_grad({x})) return out;
  const int64_t n = x.shape()[d];
  SavedTensor saved(index);
  return attach_grad(out, "index_select", {x}, [d, n, saved](const Tensor& g) {
    return std::vector<Tensor>{kernels::index_select_bwd(g, d, saved.get("index_select"), n)};
  });
}

Tensor index_scatter_add(const Tensor& src, int64_t dim, const Tensor& index, int64_t size) {
  KNOT_CHECK(src.dim() >= 1, "index_scatter_add: src must have at least one dim, got shape {}", shape_str(src.shape()));
  const int d = wrap_dim(dim, src.dim(), "index_scatter_add");
  KNOT_CHECK(index.dim() == 1 && index.size(0) == src.shape()[d],
             "index_scatter_add: index must be 1-D with one entry per slice of src along dim {} ({}), got shape {}", d,
             src.shape()[d], shape_str(index.shape()));
  KNOT_CHECK(is_integral(index.dtype()), "index_scatter_add: index must be i32 or i64, got {}", dtype_name(index.dtype()));
  KNOT_CHECK(size >= 0, "index_scatter_add: size must be >= 0, got {}", size);
  KNOT_CHECK(is_floating(src.dtype()), "index_scatter_add: src must be a float tensor, got {}", dtype_name(src.dtype()));
  Tensor out = kernels::index_select_bwd(src, d, index, size);  // the scatter-add kernel (bounds checked there)
  if (!needs_grad({src})) return out;
  SavedTensor saved(index);
  return attach_grad(out, "index_scatter_add", {src}, [d, saved](const Tensor& g) {
    return std::vector<Tensor>{kernels::index_select(g, d, saved.get("index_scatter_add"))};
  });
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  KNOT_CHECK(a.dtype() == b.dtype(), "where: a is {} {} but b is {} {}; convert one with .to(dtype)",
             dtype_name(a.dtype()), shape_str(a.shape()), dtype_name(b.dtype()), shape_str(b.shape()));
  Tensor out = kernels::where(cond, a, b);
  if (!needs_grad({a, b})) return out;
  const bool ga = a.requires_grad(), gb = b.requires_grad();
  const Shape sa = a.shape(), sb = b.shape();
  SavedTensor saved(cond);
  return attach_grad(out, "where", {a, b}, [=](const Tensor& g) {
    const Tensor& c = saved.get("where");
    const Tensor zero = scalar_tensor(0.0, g.dtype(), g.device());
    return std::vector<Tensor>{ga ? sum_to(kernels::where(c, g, zero), sa) : Tensor(),
                               gb ? sum_to(kernels::where(c, zero, g), sb) : Tensor()};
  });
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  KNOT_CHECK(mask.dim() <= x.dim() && broadcast_shapes(x.shape(), mask.shape(), "masked_fill") == x.shape(),
             "masked_fill: mask of shape {} cannot be broadcast to the input's shape {}", shape_str(mask.shape()),
             shape_str(x.shape()));
  Tensor out = kernels::masked_fill(x, mask, value);
  if (!needs_grad({x})) return out;
  SavedTensor saved(mask);
  return attach_grad(out, "masked_fill", {x}, [saved](const Tensor& g) {
    return std::vector<Tensor>{kernels::masked_fill(g, saved.get("masked_fill"), 0.0)};
  });
}

}  // namespace knot
