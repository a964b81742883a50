// Reductions over chosen dims (empty dims = all dims). keepdim keeps reduced dims as size 1.
#pragma once

#include "core/tensor.h"

namespace knot {

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Variance; unbiased divides by (n - 1).
Tensor var(const Tensor& x, const std::vector<int64_t>& dims = {}, bool unbiased = false, bool keepdim = false);
// log Σ exp over one dim, computed stably.
Tensor logsumexp(const Tensor& x, int64_t dim, bool keepdim = false);

struct MaxResult {
  Tensor values;   // differentiable; ties send the gradient to the first index
  Tensor indices;  // i64
};
MaxResult max(const Tensor& x, int64_t dim, bool keepdim = false);
MaxResult min(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor max(const Tensor& x);      // over all elements
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);

}  // namespace knot
