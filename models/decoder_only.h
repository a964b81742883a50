// DecoderOnlyTransformer: a GPT-style language model — kanformer's TransformerTextGeneration
// (its decoder-only model with the GPT-2 presets nano … XL), with every projection built by the
// projection factory, so MLP and every KAN basis are one config value (per site if wanted).
//
//   ids: (B, T) -> logits (B, T, vocab_size)
//   h = Dropout(pos(embed_tokens(ids) · sqrt(d)))      pos: sinusoidal table (kanformer), learned
//                                                       embed_positions, none, or rope (rotary
//                                                       q/k in every self-attention instead)
//   h = N blocks, each: causal self-attention -> FFN   (or a mixture of expert FFNs, `moe`) post-LN (kanformer) or pre-LN, with a final
//                                                       layer_norm after the stack when pre-LN
//   logits = lm_head(h), or tied: h · embed_tokensᵀ (+ final_logits_bias)
// The causal mask is always applied (kanformer's model takes a mask argument and its callers
// forget to build one, so its model sees the future). There is no padding mask: the `lm` task
// packs text into full blocks, and generation runs one prompt per sequence.
//
// Output head tying follows kanformer: with tie_output_embedding (the default) the head shares the
// token embedding when the output projection is a Linear; a KAN head has no matrix to share, so it
// is a separate layer — the GPT-2 preset has 123,674,449 parameters with MLP projections and
// 656,294,400 with kan_chebyshev (degree 4), as kanformer's README states.
//
// Parameter names (safetensors / state_dict):
//   embed_tokens.weight, embed_positions.weight (learned positions only)
//   layers.{i}.self_attn.{q,k,v,out}_proj.*, layers.{i}.self_attn_layer_norm.*
//   layers.{i}.ffn.{in,gate,out}_proj.*, layers.{i}.final_layer_norm.*
//   layers.{i}.moe.router.weight, layers.{i}.moe.experts.{e}.{in,gate,out}_proj.* (instead of ffn)
//   layer_norm.* (pre-LN only), lm_head.* (untied) or final_logits_bias (tied, with bias)
// kanformer's names map as emb -> embed_tokens, blocks -> layers, mha -> self_attn, ff_proj ->
// out_proj, norm1 -> self_attn_layer_norm, pffn -> ffn, gates -> gate_proj, norm2 ->
// final_layer_norm, linear -> lm_head.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "models/config.h"
#include "nn/transformer.h"

namespace knot::models {

// Keys and defaults follow kanformer's TransformerTextGeneration constructor; the rest are knot's.
struct DecoderOnlyConfig {
  int64_t num_layers = 12;
  int64_t vocab_size = 0;
  int64_t embedding_dim = 768;
  int64_t query_key_dim = 0;  // 0 -> embedding_dim
  int64_t value_dim = 0;      // 0 -> embedding_dim
  int64_t num_heads = 12;
  int64_t ffn_hidden_dim = 3072;
  std::string ffn_activation = "relu";     // any FeedForward activation: gelu, swiglu, ...
  bool use_pffn_bias = true;               // FFN in/gate/out projections
  bool use_final_linear_mha_bias = false;  // attention out projection
  bool use_final_linear_bias = false;      // output head
  bool tie_output_embedding = true;        // when the output projection is a Linear
  double dropout_rate = 0.1;
  double attention_dropout_rate = 0.0;
  int64_t max_length = 1024;  // the context: positions [0, max_length)
  double layer_norm_eps = 1e-5;
  bool pre_layer_norm = false;
  bool scale_embedding = true;                    // token embeddings · sqrt(d) (kanformer)
  // Token (and learned position) embeddings ~ N(0, std²): 1 is PyTorch's nn.Embedding (kanformer);
  // GPT-2 uses 0.02, which a tied output head needs to start near the uniform distribution.
  double embedding_init_std = 1.0;
  std::string positions = "sinusoidal";           // sinusoidal | learned | rope | none
  double rope_base = 10000.0;
  std::string attention_scale = "query_key_dim";  // kanformer: 1/sqrt(query_key_dim); or "head_dim"
  // Projections per site: `projection` is the default of every site; `projections.attention`,
  // `.ffn` and `.output` override it for their site ("MLP attention, KAN FFN" is one config).
  nn::ProjectionSpec attention_proj, ffn_proj, output_proj;
  // "moe": {"num_experts": E, "top_k": 1 or 2, "capacity_factor": 1.25, "load_balance_weight": 0.01,
  // "z_loss_weight": 0.001}: every block's FFN becomes a mixture of E experts (nn/moe.h), each an
  // FFN of the ffn site's projection kind. num_experts 0 (the default): dense FFNs.
  nn::MoEConfig moe;
  bool activation_checkpointing = false;

  // Unknown keys and wrong types are errors naming the key. An optional "model" key must be
  // "decoder_only".
  static DecoderOnlyConfig from_json(const Json& j);
  Json to_json() const;
  nn::TransformerBlockConfig block() const;
  bool tied() const { return tie_output_embedding && !output_proj.is_kan(); }
};

// The self-attention KV caches, for incremental decoding: each call feeds only the new tokens.
struct DecoderOnlyCache {
  std::vector<nn::DecoderBlockCache> layers;
  int64_t length = 0;  // positions already in the cache
};

class DecoderOnlyTransformer : public nn::Module {
 public:
  explicit DecoderOnlyTransformer(const DecoderOnlyConfig& cfg);
  std::string type_name() const override { return "DecoderOnlyTransformer"; }

  // ids: (B, T) i32/i64 -> logits (B, T, vocab_size). Without a cache the ids are positions
  // [0, T); with one, they continue after the cached positions (and are appended to the cache).
  // Errors when the positions would pass max_length.
  Tensor forward(const Tensor& ids, DecoderOnlyCache* cache = nullptr) const;
  // The same up to the last block (and the final layer_norm): (B, T, d).
  Tensor hidden(const Tensor& ids, DecoderOnlyCache* cache = nullptr) const;
  // hidden (..., d) -> logits (..., V)
  Tensor project(const Tensor& hidden) const;
  DecoderOnlyCache new_cache() const;
  const DecoderOnlyConfig& config() const { return cfg_; }
  // Mixture of experts: the sum of every block's weighted auxiliary loss of the last forward
  // (undefined without experts), and what each block routed.
  Tensor moe_aux_loss() const;
  std::vector<nn::MoEStats> moe_stats() const;

  std::shared_ptr<nn::Embedding> embed_tokens;
  std::shared_ptr<nn::Embedding> embed_positions;  // learned positions only
  std::shared_ptr<nn::ModuleList> layers;
  std::shared_ptr<nn::LayerNorm> layer_norm;  // pre-LN only
  std::shared_ptr<nn::Projection> lm_head;    // null when tied
  Tensor final_logits_bias;                   // (V), tied + use_final_linear_bias only

 private:
  DecoderOnlyConfig cfg_;
  double embed_scale_;
  std::shared_ptr<nn::SinusoidalPositionalEncoding> pe_;
  std::shared_ptr<nn::Dropout> dropout_;
};

}  // namespace knot::models
