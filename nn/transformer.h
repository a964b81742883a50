// Transformer encoder and decoder blocks (Vaswani et al. 2017, Fig. 1).
//
//   post-LN (default, as in the paper and kanformer):   x = LN(x + Dropout(sublayer(x)))
//   pre-LN  (pre_layer_norm = true, Xiong et al. 2020):  x = x + Dropout(sublayer(LN(x)))
//   encoder block:  self-attention (key padding mask) -> FFN
//   decoder block:  causal self-attention (+ target padding) -> cross-attention over the encoder
//                   memory (source padding) -> FFN (or a mixture of expert FFNs, nn/moe.h)
//   x: (B, T, d_model) -> (B, T, d_model); memory: (B, S, d_model)
// Parameter names (PyTorch/BART style): self_attn, self_attn_layer_norm, encoder_attn,
// encoder_attn_layer_norm, ffn, final_layer_norm. (kanformer: mha/mha1, norm1, mha2, norm2,
// pffn, norm2/norm3.)
#pragma once

#include <memory>
#include <string>

#include "nn/attention.h"
#include "nn/feedforward.h"
#include "nn/moe.h"

namespace knot::nn {

struct TransformerBlockConfig {
  int64_t d_model = 0;
  int64_t num_heads = 1;
  int64_t query_key_dim = 0;  // 0 -> d_model
  int64_t value_dim = 0;      // 0 -> d_model
  int64_t ffn_hidden_dim = 0;
  std::string ffn_activation = "relu";
  bool ffn_bias_in = true;
  bool ffn_bias_out = true;
  bool attention_out_bias = false;
  bool attention_qkv_bias = false;  // biases on the q/k/v projections
  double dropout = 0.1;            // residual dropouts and the FFN's hidden dropout
  double attention_dropout = 0.0;  // on the attention weights
  double layer_norm_eps = 1e-5;
  bool pre_layer_norm = false;
  std::string attention_scale = "head_dim";  // or "query_key_dim"
  bool rope = false;                         // rotary positions in self-attention
  double rope_base = 10000.0;
  ProjectionSpec proj;      // attention q/k/v/out projections
  ProjectionSpec ffn_proj;  // FFN projections
  MoEConfig moe;            // num_experts > 0: decoder blocks get a mixture of expert FFNs (nn/moe.h)

  MultiHeadAttentionConfig attention() const;
};

class EncoderBlock : public Module {
 public:
  explicit EncoderBlock(const TransformerBlockConfig& cfg);
  std::string type_name() const override { return "EncoderBlock"; }
  // x: (B, T, d_model); key_padding_mask: (B, T) non-zero = padded, or undefined.
  Tensor forward(const Tensor& x, const Tensor& key_padding_mask = Tensor()) const;
  bool pre_layer_norm() const { return pre_ln_; }

  std::shared_ptr<MultiHeadAttention> self_attn;
  std::shared_ptr<LayerNorm> self_attn_layer_norm;
  std::shared_ptr<FeedForward> ffn;
  std::shared_ptr<LayerNorm> final_layer_norm;

 private:
  bool pre_ln_;
  std::shared_ptr<Dropout> dropout_;
};

// h through every EncoderBlock of `layers` in turn. With `checkpointed` (activation checkpointing,
// training) each block runs through checkpoint() (autograd/checkpoint.h): only its inputs are kept
// and its activations are recomputed in backward. Shared by the encoder-decoder's encoder and
// ELECTRA's stacks.
Tensor run_encoder_blocks(const ModuleList& layers, Tensor h, const Tensor& key_padding_mask, bool checkpointed);

// KV caches of one decoder block for incremental decoding.
struct DecoderBlockCache {
  KVCache self_attn;
  KVCache cross_attn{Tensor(), Tensor(), true};
};

class DecoderBlock : public Module {
 public:
  explicit DecoderBlock(const TransformerBlockConfig& cfg, bool cross_attention = true);
  std::string type_name() const override { return "DecoderBlock"; }
  // x: (B, T, d_model) — with a cache, only the new positions; self_padding_mask: (B, S_self)
  // over every self-attention key (cached + new); memory: (B, S, d_model) (ignored once the
  // cross-attention cache is filled); memory_padding_mask: (B, S).
  Tensor forward(const Tensor& x, const Tensor& memory, const Tensor& self_padding_mask = Tensor(),
                 const Tensor& memory_padding_mask = Tensor(), DecoderBlockCache* cache = nullptr) const;
  bool pre_layer_norm() const { return pre_ln_; }

  std::shared_ptr<MultiHeadAttention> self_attn;
  std::shared_ptr<LayerNorm> self_attn_layer_norm;
  std::shared_ptr<MultiHeadAttention> encoder_attn;  // null without cross-attention
  std::shared_ptr<LayerNorm> encoder_attn_layer_norm;
  std::shared_ptr<FeedForward> ffn;                  // null with a mixture of experts
  std::shared_ptr<MoEFeedForward> moe;               // null without
  std::shared_ptr<LayerNorm> final_layer_norm;

 private:
  bool pre_ln_;
  std::shared_ptr<Dropout> dropout_;
};

}  // namespace knot::nn
