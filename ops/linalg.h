// Matrix products. Transposes are flags handed to the GEMM, never copies.
#pragma once

#include "core/tensor.h"

namespace knot {

// a: (..., M, K) or (..., K, M) if trans_a;  b: (..., K, N) or (..., N, K) if trans_b
// -> (..., M, N). Leading batch dims broadcast; 1-D operands are treated as in NumPy.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);
// x: (..., in)  w: (out, in)  b: (out) or undefined  ->  (..., out) = x·wᵀ + b
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = Tensor());

}  // namespace knot
