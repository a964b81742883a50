// Gathers, scatters and joins.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace knot {

Tensor cat(const std::vector<Tensor>& xs, int64_t dim);
Tensor stack(const std::vector<Tensor>& xs, int64_t dim);
// index: 1-D i32/i64. Gradient is a deterministic scatter-add.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// The adjoint of index_select: a tensor of src's shape with `size` slices along dim, zero except
// out[index[i]] += src[i] (duplicate indices add up, in a fixed order). Used to combine the
// outputs of mixture-of-experts FFNs (nn/moe.h). Backward: index_select of the gradient.
Tensor index_scatter_add(const Tensor& src, int64_t dim, const Tensor& index, int64_t size);
// cond: any numeric dtype (non-zero = true), broadcast with a and b.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
// x where mask == 0, value where mask != 0 (mask broadcast to x).
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

}  // namespace knot
