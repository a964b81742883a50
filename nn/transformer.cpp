// Transformer encoder/decoder blocks (see transformer.h).
#include "nn/transformer.h"

#include "autograd/checkpoint.h"
#include "ops/ops.h"

namespace knot::nn {
namespace {

// One residual sub-layer, post-LN or pre-LN.
template <typename F>
Tensor residual(const Tensor& x, const LayerNorm& ln, const Dropout& drop, bool pre_ln, F&& sublayer) {
  if (pre_ln) return add(x, drop.forward(sublayer(ln.forward(x))));
  return ln.forward(add(x, drop.forward(sublayer(x))));
}

}  // namespace

MultiHeadAttentionConfig TransformerBlockConfig::attention() const {
  MultiHeadAttentionConfig a;
  a.d_model = d_model;
  a.num_heads = num_heads;
  a.query_key_dim = query_key_dim;
  a.value_dim = value_dim;
  a.out_bias = attention_out_bias;
  a.qkv_bias = attention_qkv_bias;
  a.attention_dropout = attention_dropout;
  a.scale = attention_scale;
  a.rope = rope;
  a.rope_base = rope_base;
  a.proj = proj;
  return a;
}

EncoderBlock::EncoderBlock(const TransformerBlockConfig& cfg) : pre_ln_(cfg.pre_layer_norm) {
  self_attn = register_module("self_attn", std::make_shared<MultiHeadAttention>(cfg.attention()));
  self_attn_layer_norm = register_module("self_attn_layer_norm", std::make_shared<LayerNorm>(cfg.d_model, cfg.layer_norm_eps));
  ffn = register_module("ffn", std::make_shared<FeedForward>(cfg.d_model, cfg.ffn_hidden_dim, cfg.ffn_activation,
                                                             cfg.dropout, cfg.ffn_proj, cfg.ffn_bias_in, cfg.ffn_bias_out));
  final_layer_norm = register_module("final_layer_norm", std::make_shared<LayerNorm>(cfg.d_model, cfg.layer_norm_eps));
  dropout_ = register_module("dropout", std::make_shared<Dropout>(cfg.dropout));
}

Tensor EncoderBlock::forward(const Tensor& x, const Tensor& key_padding_mask) const {
  Tensor h = residual(x, *self_attn_layer_norm, *dropout_, pre_ln_,
                      [&](const Tensor& y) { return self_attn->forward(y, y, key_padding_mask, false); });
  return residual(h, *final_layer_norm, *dropout_, pre_ln_, [&](const Tensor& y) { return ffn->forward(y); });
}

DecoderBlock::DecoderBlock(const TransformerBlockConfig& cfg, bool cross_attention) : pre_ln_(cfg.pre_layer_norm) {
  self_attn = register_module("self_attn", std::make_shared<MultiHeadAttention>(cfg.attention()));
  self_attn_layer_norm = register_module("self_attn_layer_norm", std::make_shared<LayerNorm>(cfg.d_model, cfg.layer_norm_eps));
  if (cross_attention) {
    MultiHeadAttentionConfig cross = cfg.attention();
    cross.rope = false;  // the memory's positions are not the decoder's
    encoder_attn = register_module("encoder_attn", std::make_shared<MultiHeadAttention>(cross));
    encoder_attn_layer_norm =
        register_module("encoder_attn_layer_norm", std::make_shared<LayerNorm>(cfg.d_model, cfg.layer_norm_eps));
  }
  if (cfg.moe.enabled())
    moe = register_module("moe", std::make_shared<MoEFeedForward>(cfg.d_model, cfg.ffn_hidden_dim, cfg.ffn_activation,
                                                                  cfg.dropout, cfg.ffn_proj, cfg.ffn_bias_in,
                                                                  cfg.ffn_bias_out, cfg.moe));
  else
    ffn = register_module("ffn", std::make_shared<FeedForward>(cfg.d_model, cfg.ffn_hidden_dim, cfg.ffn_activation,
                                                               cfg.dropout, cfg.ffn_proj, cfg.ffn_bias_in, cfg.ffn_bias_out));
  final_layer_norm = register_module("final_layer_norm", std::make_shared<LayerNorm>(cfg.d_model, cfg.layer_norm_eps));
  dropout_ = register_module("dropout", std::make_shared<Dropout>(cfg.dropout));
}

Tensor DecoderBlock::forward(const Tensor& x, const Tensor& memory, const Tensor& self_padding_mask,
                             const Tensor& memory_padding_mask, DecoderBlockCache* cache) const {
  Tensor h = residual(x, *self_attn_layer_norm, *dropout_, pre_ln_, [&](const Tensor& y) {
    return self_attn->forward(y, y, self_padding_mask, true, cache ? &cache->self_attn : nullptr);
  });
  if (encoder_attn) {
    h = residual(h, *encoder_attn_layer_norm, *dropout_, pre_ln_, [&](const Tensor& y) {
      return encoder_attn->forward(y, memory, memory_padding_mask, false, cache ? &cache->cross_attn : nullptr);
    });
  }
  return residual(h, *final_layer_norm, *dropout_, pre_ln_,
                  [&](const Tensor& y) { return moe ? moe->forward(y) : ffn->forward(y); });
}

Tensor run_encoder_blocks(const ModuleList& layers, Tensor h, const Tensor& key_padding_mask, bool checkpointed) {
  for (size_t i = 0; i < layers.size(); ++i) {
    if (checkpointed) {
      // The closure owns the block (it runs again in backward); the mask travels as an input.
      auto block = std::dynamic_pointer_cast<EncoderBlock>(layers[i]);
      h = checkpoint([block](const std::vector<Tensor>& in) { return block->forward(in[0], in[1]); },
                     {h, key_padding_mask});
    } else {
      h = layers.at<EncoderBlock>(i).forward(h, key_padding_mask);
    }
  }
  return h;
}

}  // namespace knot::nn
