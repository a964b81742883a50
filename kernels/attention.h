// Fused scaled-dot-product attention kernels (Vaswani et al. 2017, §3.2.1), saving only the row
// logsumexp for backward (the FlashAttention recipe, Dao et al. 2022):
//
//   S = scale · Q Kᵀ            masked entries (padded key, or key after the causal limit) = −inf
//   lse_t = log Σ_s exp(S_ts)   P = exp(S − lse)     P̃ = P ⊙ keep / (1 − p)   (dropout on weights)
//   O = P̃ V
//
// Backward recomputes P from (Q, K, lse), never reading a stored (B, H, T, S) tensor:
//   D_t = Σ_j dO_tj O_tj  (= Σ_s P_ts dP_ts)      dP̃ = dO Vᵀ     dP = dP̃ ⊙ keep / (1 − p)
//   dV = P̃ᵀ dO            dS = P ⊙ (dP − D)      dQ = scale · dS K      dK = scale · dSᵀ Q
//
// Causal: query t sees keys s ≤ t + (S − T), so with a KV cache (S > T) the new queries sit at
// the end of the key sequence. A row whose keys are all masked has lse = −inf, output 0 and
// gradient 0 (never NaN).
// Dropout: element (b, h, t, s) is kept when dropout_keep(seed, draw, offset + ((b·H + h)·T + t)·S + s, p)
// (kernels/dropout.h), the same index the dropout op uses on a contiguous (B, H, T, S) tensor, so
// the composite reference with the same generator state draws the same mask.
#pragma once

#include <cstdint>

#include "kernels/dispatch.h"

namespace knot::kernels {

struct AttentionParams {
  bool causal = false;
  double scale = 1.0;      // multiplies Q Kᵀ
  double dropout_p = 0.0;  // on the attention weights; 0 = none
  uint64_t seed = 0;       // dropout stream (seed, draw) from the generator
  uint64_t draw = 0;
  uint64_t dropout_offset = 0;  // added to every dropout element index (a data-parallel rank's first element)
};

struct AttentionFwd {
  Tensor out;  // (B, H, T, Dv); the CPU kernel returns a transposed view of a (B, T, H, Dv) buffer
  Tensor lse;  // (B, H, T) contiguous, −inf on fully masked rows
};

struct AttentionBwd {  // the CPU kernel returns each as a transposed view of a (B, L, H, D) buffer
  Tensor dq;  // (B, H, T, Dk)
  Tensor dk;  // (B, H, S, Dk)
  Tensor dv;  // (B, H, S, Dv)
};

#define KNOT_ATTENTION_KERNELS(X)                                                                               \
  /* q: (B, H, T, Dk)  k: (B, H, S, Dk)  v: (B, H, S, Dv), any strides, same float dtype;                       \
  key_padding_mask: (B, S) any numeric dtype, non-zero = padded, or undefined */                                \
  X(AttentionFwd, attention_fwd, (const Tensor& q, const Tensor& k, const Tensor& v,                            \
                                  const Tensor& key_padding_mask, const AttentionParams& p))                    \
  /* dout, out: (B, H, T, Dv)  lse: (B, H, T) from attention_fwd with the same q, k, v, mask and p */           \
  X(AttentionBwd, attention_bwd, (const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,        \
                                  const Tensor& out, const Tensor& lse, const Tensor& key_padding_mask,         \
                                  const AttentionParams& p))

namespace cpu { KNOT_ATTENTION_KERNELS(KNOT_DECLARE_KERNEL) }
namespace cuda { KNOT_ATTENTION_KERNELS(KNOT_DECLARE_KERNEL) }

inline AttentionFwd attention_fwd(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& key_padding_mask,
                                  const AttentionParams& p) {
  return KNOT_DISPATCH(q, attention_fwd(q, k, v, key_padding_mask, p));
}
inline AttentionBwd attention_bwd(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& out, const Tensor& lse, const Tensor& key_padding_mask,
                                  const AttentionParams& p) {
  return KNOT_DISPATCH(q, attention_bwd(dout, q, k, v, out, lse, key_padding_mask, p));
}

}  // namespace knot::kernels
