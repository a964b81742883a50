// Views (share storage, differentiable), copies and conversions. Members of Tensor with the same
// names forward here.
#pragma once

#include "core/tensor.h"

namespace knot {

Tensor reshape(const Tensor& x, Shape s);          // view when possible, else a copy; one -1 allowed
Tensor view(const Tensor& x, Shape s);             // must be viewable without a copy
Tensor flatten(const Tensor& x, int64_t start = 0, int64_t end = -1);
Tensor transpose(const Tensor& x, int64_t d0, int64_t d1);
Tensor permute(const Tensor& x, const std::vector<int64_t>& order);
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);  // Python-style bounds
Tensor select(const Tensor& x, int64_t dim, int64_t index);  // drops dim
Tensor expand(const Tensor& x, const Shape& s);    // -1 keeps a dim; new leading dims allowed
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor contiguous(const Tensor& x);
Tensor clone(const Tensor& x);                     // always a copy
Tensor to_dtype(const Tensor& x, DType t);         // differentiable between float dtypes
Tensor to_device(const Tensor& x, Device d);       // differentiable

}  // namespace knot
