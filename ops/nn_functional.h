// Neural-network ops with fused kernels and hand-written backward.
#pragma once

#include "core/rng.h"
#include "core/tensor.h"

namespace knot {

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
// Normalises over the last weight.dim() dims (PyTorch's normalized_shape = weight.shape()).
// weight/bias may be undefined (no affine).
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5,
                  const Shape& normalized_shape = {});
// Zeroes each element with probability p and scales the rest by 1/(1-p); identity when !train or p == 0.
// The mask comes from the counter-based RNG, so a seed gives the same mask on every device.
Tensor dropout(const Tensor& x, double p, bool train, Generator* gen = nullptr);
// dropout(relu(x), p, train, gen), the same values, gradients and generator draw, but it keeps only
// its output for backward (the two-op form keeps x for relu and the output for the next op): the
// output is > 0 exactly where x > 0 and the element was kept, which is all relu's derivative needs.
Tensor relu_dropout(const Tensor& x, double p, bool train, Generator* gen = nullptr);
// ids: any shape of i32/i64; weight: (V, D) -> (..., D). Backward is a deterministic scatter-add.
// Rows equal to padding_idx (if >= 0) get no gradient.
Tensor embedding(const Tensor& ids, const Tensor& weight, int64_t padding_idx = -1);

enum class Reduction { mean, sum, none };
// logits: (N, C) or (..., C); target: (N) / (...) i32/i64. Targets equal to ignore_index do not
// count (mean divides by the number of counted targets). label_smoothing ε mixes the one-hot target
// with the uniform distribution: (1-ε)·onehot + ε/C.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index = -100,
                     double label_smoothing = 0.0, Reduction reduction = Reduction::mean);
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean);
// Binary cross-entropy with logits averaged over the positions of weight 1 (ELECTRA's replaced-token
// detection): Σ w·(softplus(x) − y·x) / max(Σ w, 1), without overflow for large |x|. logits, labels,
// weights: one shape, floating; the gradient flows to logits (and labels, weights if they need it).
Tensor bce_with_logits(const Tensor& logits, const Tensor& labels, const Tensor& weights);

// Rotary position embedding (Su et al. 2021, RoFormer) in the half-split form of GPT-NeoX and
// LLaMA: x (..., T, D) with D even, row t at position p = offset + t; for i < D/2,
//   θ_i = base^(−2i/D)
//   y[i]       = x[i]·cos(p·θ_i) − x[i + D/2]·sin(p·θ_i)
//   y[i + D/2] = x[i + D/2]·cos(p·θ_i) + x[i]·sin(p·θ_i)
// Each pair (i, i + D/2) is rotated by p·θ_i, so the dot product of a rotated query at p and a
// rotated key at s depends on the positions only through s − p. The angles are computed in double
// and the tables cast to x's dtype; a composite of slice/mul/sub/add/cat, so backward (the inverse
// rotation of the incoming gradient) comes from those ops.
Tensor rotary_embedding(const Tensor& x, int64_t offset = 0, double base = 10000.0);

}  // namespace knot
