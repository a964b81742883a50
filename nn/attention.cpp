// Multi-head attention with KV cache (see attention.h).
#include "nn/attention.h"

#include <cmath>

#include "ops/attention.h"
#include "ops/nn_functional.h"
#include "ops/ops.h"

namespace knot::nn {

MultiHeadAttention::MultiHeadAttention(const MultiHeadAttentionConfig& cfg) : cfg_(cfg) {
  if (cfg_.query_key_dim == 0) cfg_.query_key_dim = cfg_.d_model;
  if (cfg_.value_dim == 0) cfg_.value_dim = cfg_.d_model;
  const int64_t d = cfg_.d_model, qk = cfg_.query_key_dim, vd = cfg_.value_dim, H = cfg_.num_heads;
  KNOT_CHECK(d > 0 && qk > 0 && vd > 0 && H > 0,
             "MultiHeadAttention: sizes must be positive, got d_model={} query_key_dim={} value_dim={} heads={}", d,
             qk, vd, H);
  KNOT_CHECK(qk % H == 0 && vd % H == 0,
             "MultiHeadAttention: query_key_dim {} and value_dim {} must divide by num_heads {}", qk, vd, H);
  KNOT_CHECK(cfg_.scale == "head_dim" || cfg_.scale == "query_key_dim",
             "MultiHeadAttention: scale must be 'head_dim' or 'query_key_dim', got '{}'", cfg_.scale);
  KNOT_CHECK(cfg_.attention_dropout >= 0.0 && cfg_.attention_dropout < 1.0,
             "MultiHeadAttention: attention_dropout must be in [0, 1), got {}", cfg_.attention_dropout);
  KNOT_CHECK(!cfg_.rope || (qk / H) % 2 == 0,
             "MultiHeadAttention: rotary positions need an even head size, got query_key_dim {} / num_heads {} = {}", qk,
             H, qk / H);
  scale_ = 1.0 / std::sqrt(static_cast<double>(cfg_.scale == "head_dim" ? qk / H : qk));
  q_proj = register_module("q_proj", cfg_.proj.make(d, qk, cfg_.qkv_bias));
  k_proj = register_module("k_proj", cfg_.proj.make(d, qk, cfg_.qkv_bias));
  v_proj = register_module("v_proj", cfg_.proj.make(d, vd, cfg_.qkv_bias));
  out_proj = register_module("out_proj", cfg_.proj.make(vd, d, cfg_.out_bias));
}

Tensor MultiHeadAttention::split_heads(const Tensor& x) const {
  const int64_t B = x.size(0), L = x.size(1), H = cfg_.num_heads;
  return x.view({B, L, H, x.size(2) / H}).transpose(1, 2);
}

Tensor MultiHeadAttention::forward(const Tensor& query, const Tensor& key_value, const Tensor& key_padding_mask,
                                   bool causal, KVCache* cache) const {
  KNOT_CHECK(query.dim() == 3 && query.size(2) == cfg_.d_model,
             "MultiHeadAttention: query must be (B, T, {}), got {}", cfg_.d_model, shape_str(query.shape()));
  const int64_t B = query.size(0), T = query.size(1);
  // Rotary positions: the new rows sit after the keys already cached (self-attention).
  const int64_t pos0 = cache && !cache->is_static ? cache->length() : 0;
  KNOT_CHECK(!cfg_.rope || !(cache && cache->is_static),
             "MultiHeadAttention: rotary positions apply to self-attention only, not to a static (cross-attention) cache");
  Tensor k, v;
  if (cache && cache->is_static && cache->k.defined()) {
    k = cache->k;  // cross-attention: the memory's keys/values, computed on the first call
    v = cache->v;
  } else {
    KNOT_CHECK(key_value.dim() == 3 && key_value.size(0) == B && key_value.size(2) == cfg_.d_model,
               "MultiHeadAttention: key_value must be (B={}, S, {}), got {}", B, cfg_.d_model,
               shape_str(key_value.shape()));
    k = split_heads(k_proj->forward(key_value));
    if (cfg_.rope) k = rotary_embedding(k, pos0, cfg_.rope_base);
    v = split_heads(v_proj->forward(key_value));
    if (cache) {
      if (!cache->is_static && cache->k.defined()) {
        KNOT_CHECK(cache->k.size(0) == B, "MultiHeadAttention: cache holds batch {} but the query has batch {}",
                   cache->k.size(0), B);
        k = cat({cache->k, k}, 2);
        v = cat({cache->v, v}, 2);
      }
      cache->k = k;
      cache->v = v;
    }
  }
  AttentionOptions opt;
  opt.key_padding_mask = key_padding_mask;
  opt.causal = causal;
  opt.scale = scale_;
  opt.dropout_p = is_training() ? cfg_.attention_dropout : 0.0;
  Tensor q = split_heads(q_proj->forward(query));
  if (cfg_.rope) q = rotary_embedding(q, pos0, cfg_.rope_base);
  const Tensor o = scaled_dot_product_attention(q, k, v, opt);  // (B, H, T, v/H)
  return out_proj->forward(o.transpose(1, 2).reshape({B, T, cfg_.value_dim}));
}

}  // namespace knot::nn
