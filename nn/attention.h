// Multi-head attention (Vaswani et al. 2017, §3.2.2) with separate q/k/v projections and a KV cache.
//
//   query: (B, T, d_model)   key_value: (B, S, d_model)   ->   (B, T, d_model)
//   q = q_proj(query): (B, T, qk) -> (B, H, T, qk/H)      k = k_proj(key_value): (B, H, S, qk/H)
//   v = v_proj(key_value): (B, H, S, v/H)                  o = sdpa(q, k, v): (B, H, T, v/H)
//   out = out_proj(concat_heads(o)): (B, T, d_model)
// query_key_dim and value_dim may differ from d_model (and from each other); both must divide by
// the head count. q/k/v have no bias unless qkv_bias; out_proj's bias is optional. The attention scale is
// 1/sqrt(qk/H) ("head_dim", the paper) or 1/sqrt(qk) ("query_key_dim", what kanformer does).
// Parameter names: q_proj, k_proj, v_proj, out_proj (kanformer calls out_proj "ff_proj").
//
// KV cache (incremental decoding): a self-attention cache appends the new keys/values each call
// (queries are the newest T positions, so causal masking uses the S − T offset); a static cache
// (cross-attention) computes the keys/values from key_value once and reuses them afterwards.
// With rope, q and the new k are rotated by their positions before attention (the cache keeps the
// rotated keys, so a cached decode equals a full recomputation).
#pragma once

#include <memory>
#include <string>

#include "nn/layers.h"

namespace knot::nn {

struct KVCache {
  Tensor k;  // (B, H, S, qk/H), undefined until the first call
  Tensor v;  // (B, H, S, v/H)
  bool is_static = false;  // cross-attention: computed once from the encoder memory
  int64_t length() const { return k.defined() ? k.size(2) : 0; }
  void reset() { k = Tensor(); v = Tensor(); }
};

struct MultiHeadAttentionConfig {
  int64_t d_model = 0;
  int64_t num_heads = 1;
  int64_t query_key_dim = 0;  // 0 -> d_model
  int64_t value_dim = 0;      // 0 -> d_model
  bool out_bias = false;
  bool qkv_bias = false;             // biases on q/k/v (BERT/ELECTRA have them; kanformer has none)
  double attention_dropout = 0.0;    // on the attention weights
  std::string scale = "head_dim";    // or "query_key_dim"
  // Rotary position embedding (ops rotary_embedding) of the queries and keys, self-attention only:
  // the new positions are [cached length, cached length + T), and cached keys are stored rotated.
  bool rope = false;
  double rope_base = 10000.0;
  ProjectionSpec proj;
};

class MultiHeadAttention : public Module {
 public:
  explicit MultiHeadAttention(const MultiHeadAttentionConfig& cfg);
  std::string type_name() const override { return "MultiHeadAttention"; }
  // key_padding_mask: (B, S_total) over every key the call attends to (cached ones included),
  // non-zero = padded, or undefined. causal: query t sees keys ≤ t + (S_total − T).
  Tensor forward(const Tensor& query, const Tensor& key_value, const Tensor& key_padding_mask = Tensor(),
                 bool causal = false, KVCache* cache = nullptr) const;
  const MultiHeadAttentionConfig& config() const { return cfg_; }
  double scale() const { return scale_; }

  std::shared_ptr<Projection> q_proj, k_proj, v_proj, out_proj;

 private:
  // (B, L, H·D) -> (B, H, L, D) as a view.
  Tensor split_heads(const Tensor& x) const;
  MultiHeadAttentionConfig cfg_;
  double scale_;
};

}  // namespace knot::nn
