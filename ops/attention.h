// Scaled-dot-product attention (Vaswani et al. 2017, §3.2.1), fused, with a composite reference.
//
//   q: (B, H, T, Dk)   k: (B, H, S, Dk)   v: (B, H, S, Dv)   ->   (B, H, T, Dv)
//   out = dropout(softmax(scale · q kᵀ + mask)) v
//
// Masks: key_padding_mask (B, S), any numeric dtype, non-zero = padded (that key is never
// attended to); causal: query t sees keys s ≤ t + (S − T) (so with a KV cache the T new queries
// are the last T positions). A query row with every key masked gives output 0 and gradient 0.
// scale: 1/sqrt(Dk) when 0 (the paper's per-head scale); kanformer passes 1/sqrt(query_key_dim)
// of the full width. dropout_p > 0 drops attention weights with the counter-based RNG: the fused
// backward regenerates the mask from (seed, draw) instead of saving it. Pass dropout_p = 0 in eval.
//
// The fused op saves q, k, v, the output and the per-row logsumexp (B, H, T) — never the
// (B, H, T, S) probabilities (kernels/attention.h has the backward formulas).
#pragma once

#include "core/rng.h"
#include "core/tensor.h"

namespace knot {

struct AttentionOptions {
  Tensor key_padding_mask;  // (B, S) or undefined
  bool causal = false;
  double dropout_p = 0.0;  // on the attention weights, in [0, 1)
  double scale = 0.0;      // 0 -> 1/sqrt(Dk)
  Generator* gen = nullptr;  // dropout stream; the default generator when null
};

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const AttentionOptions& opt = {});

// Composite reference from primitives (matmul, masked_fill, softmax, dropout, matmul); keeps the
// (B, H, T, S) probabilities. Same conventions as the fused op, including output 0 on fully masked
// rows, and the same dropout mask for the same generator state.
Tensor sdpa_ref(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& opt = {});

// The combined boolean mask (B, 1, T, S) of the options as 1 = masked (f32 on q's device): the
// padding and causal rules in one place, for the reference and for tests.
Tensor attention_mask(const AttentionOptions& opt, int64_t B, int64_t T, int64_t S, DType dtype, Device device);

}  // namespace knot
