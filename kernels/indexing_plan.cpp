// index_select's plan, shared by the CPU and CUDA kernels (see indexing.h).
#include "kernels/indexing.h"

#include "core/dispatch.h"
#include "kernels/reduce.h"  // split_at_dim

namespace knot::kernels {

SelectPlan select_plan(const Shape& x_shape, int dim, int64_t m) {
  const DimSplit sp = split_at_dim(x_shape, dim);
  SelectPlan p;
  p.outer = sp.outer;
  p.n = sp.n;
  p.m = m;
  p.inner = sp.inner;
  p.source_shape = x_shape;
  p.selected_shape = x_shape;
  p.selected_shape[dim] = m;
  return p;
}

SelectPlan select_bwd_plan(const Shape& g_shape, int dim, int64_t index_numel, int64_t src_size) {
  KNOT_CHECK(index_numel == g_shape[dim], "index_select: gradient has {} entries along dim {} but the index has {}",
             g_shape[dim], dim, index_numel);
  Shape x_shape = g_shape;
  x_shape[dim] = src_size;
  return select_plan(x_shape, dim, index_numel);
}

std::vector<int64_t> select_indices(const Tensor& index, int dim, int64_t size) {
  dispatch_index(index.dtype(), "index_select", [](auto) {});  // an index dtype, or an error naming it
  const std::vector<int64_t> out = index.to_vector<int64_t>();  // any device and layout
  for (size_t i = 0; i < out.size(); ++i)
    KNOT_CHECK(out[i] >= 0 && out[i] < size,
               "index_select: index {} (at position {}) is out of range for dim {} of size {}", out[i], i, dim, size);
  return out;
}

}  // namespace knot::kernels
