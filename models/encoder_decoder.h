// EncoderDecoderTransformer: the kanformer model (the original Transformer, Vaswani et al. 2017,
// with every projection built by the projection factory, so MLP and KAN variants are one config
// value).
//
//   src: (B, S) ids, tgt: (B, T) ids  ->  logits (B, T, vocab_tgt_size)
//   encoder:  h = Dropout(PE(embed_src(src) · sqrt(d))) -> N encoder blocks (source padding mask)
//   decoder:  h = Dropout(PE(embed_tgt(tgt) · sqrt(d))) -> M decoder blocks (causal + target
//             padding in self-attention, source padding in cross-attention) -> lm_head
//   lm_head:  projection d -> vocab_tgt (optional bias), or tied to the target embedding
//             (logits = h · Eᵀ, plus final_logits_bias when use_final_linear_bias)
// With activation_checkpointing (training), each block runs through checkpoint(): its internal
// activations are recomputed in backward rather than kept between forward and backward.
// Pad ids < 0 mean "no padding token" (kanformer's training default). The sinusoidal table is
// not a parameter, so parameter counts match kanformer: 21,858,816 for configs/kanformer-mlp.json
// and 21,446,400 for configs/kanformer-kan.json.
//
// Parameter names (safetensors / state_dict):
//   encoder.embed_tokens.weight                      decoder.embed_tokens.weight
//   encoder.layers.{i}.self_attn.{q,k,v,out}_proj.*   decoder.layers.{i}.self_attn.{q,k,v,out}_proj.*
//   encoder.layers.{i}.self_attn_layer_norm.*         decoder.layers.{i}.encoder_attn.{q,k,v,out}_proj.*
//   encoder.layers.{i}.ffn.{in,gate,out}_proj.*       decoder.layers.{i}.{self_attn,encoder_attn}_layer_norm.*
//   encoder.layers.{i}.final_layer_norm.*             decoder.layers.{i}.ffn.*, .final_layer_norm.*
//   encoder.layer_norm.*, decoder.layer_norm.* (pre-LN only)     lm_head.weight / lm_head.bias
// kanformer's names map as src_emb -> encoder.embed_tokens, tgt_emb -> decoder.embed_tokens,
// encoder_blocks -> encoder.layers, decoder_blocks -> decoder.layers, mha/mha1 -> self_attn,
// mha2 -> encoder_attn, ff_proj -> out_proj, pffn -> ffn, gates -> gate_proj, norm1 ->
// self_attn_layer_norm, (decoder) norm2 -> encoder_attn_layer_norm, last norm -> final_layer_norm,
// linear -> lm_head.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "models/config.h"
#include "nn/transformer.h"

namespace knot::models {

// Keys and defaults follow kanformer's constructor arguments.
struct EncoderDecoderConfig {
  int64_t num_encoder_layers = 3;
  int64_t num_decoder_layers = 3;
  int64_t vocab_src_size = 0;
  int64_t vocab_tgt_size = 0;
  int64_t pad_src_idx = -1;
  int64_t pad_tgt_idx = -1;
  int64_t embedding_dim = 512;
  int64_t query_key_dim = 0;  // 0 -> embedding_dim
  int64_t value_dim = 0;      // 0 -> embedding_dim
  int64_t num_heads = 8;
  int64_t ffn_hidden_dim = 2048;
  std::string ffn_activation = "relu";
  bool use_ffn_bias_1 = true;              // FFN in/gate projections
  bool use_ffn_bias_2 = true;              // FFN out projection
  bool use_final_linear_mha_bias = false;  // attention out projection
  bool use_final_linear_bias = false;      // lm_head
  bool tie_output_embedding = false;
  double dropout_rate = 0.1;
  double attention_dropout_rate = 0.0;
  int64_t max_length = 2048;
  double layer_norm_eps = 1e-5;
  bool pre_layer_norm = false;
  std::string attention_scale = "query_key_dim";  // kanformer: 1/sqrt(query_key_dim); or "head_dim"
  nn::ProjectionSpec projection;  // every projection, unless `projections` names its site
  // Per site ("projections": {"attention": …, "ffn": …, "output": …}, each optional and defaulting to
  // `projection`): the attention q/k/v/out projections (self and cross), the FFN's, and the output
  // head, so "MLP attention, KAN FFN" is one config (issue 17).
  nn::ProjectionSpec attention_proj, ffn_proj, output_proj;
  // Whether every site uses `projection` (layouts with one projection kind, e.g. kanformer's, need it).
  bool uniform_projection() const;
  // Training only: every encoder and decoder block keeps just its inputs and recomputes its
  // activations in backward (autograd/checkpoint.h). Same loss and gradients bit for bit, less
  // activation memory, about one more forward of the blocks per step.
  bool activation_checkpointing = false;

  // Unknown keys and wrong types are errors naming the key. An optional "model" key must be
  // "encoder_decoder".
  static EncoderDecoderConfig from_json(const Json& j);
  Json to_json() const;
  nn::TransformerBlockConfig block() const;
};

// The KV caches and the target ids seen so far, for incremental decoding.
struct DecoderCache {
  std::vector<nn::DecoderBlockCache> layers;
  std::vector<std::vector<int64_t>> tgt_ids;  // per batch row, every position decoded so far
  int64_t length() const { return tgt_ids.empty() ? 0 : static_cast<int64_t>(tgt_ids[0].size()); }
};

class TransformerEncoder : public nn::Module {
 public:
  TransformerEncoder(const EncoderDecoderConfig& cfg);
  std::string type_name() const override { return "TransformerEncoder"; }
  // src: (B, S) ids -> (B, S, d)
  Tensor forward(const Tensor& src, const Tensor& src_padding_mask) const;

  std::shared_ptr<nn::Embedding> embed_tokens;
  std::shared_ptr<nn::ModuleList> layers;
  std::shared_ptr<nn::LayerNorm> layer_norm;  // pre-LN only

 private:
  double embed_scale_;
  bool checkpoint_blocks_;
  std::shared_ptr<nn::SinusoidalPositionalEncoding> pe_;
  std::shared_ptr<nn::Dropout> dropout_;
};

class TransformerDecoder : public nn::Module {
 public:
  TransformerDecoder(const EncoderDecoderConfig& cfg);
  std::string type_name() const override { return "TransformerDecoder"; }
  // tgt: (B, T) ids at positions [offset, offset + T) -> hidden (B, T, d)
  Tensor forward(const Tensor& tgt, int64_t offset, const Tensor& memory, const Tensor& self_padding_mask,
                 const Tensor& memory_padding_mask, DecoderCache* cache) const;

  std::shared_ptr<nn::Embedding> embed_tokens;
  std::shared_ptr<nn::ModuleList> layers;
  std::shared_ptr<nn::LayerNorm> layer_norm;  // pre-LN only

 private:
  double embed_scale_;
  bool checkpoint_blocks_;
  std::shared_ptr<nn::SinusoidalPositionalEncoding> pe_;
  std::shared_ptr<nn::Dropout> dropout_;
};

class EncoderDecoderTransformer : public nn::Module {
 public:
  explicit EncoderDecoderTransformer(const EncoderDecoderConfig& cfg);
  std::string type_name() const override { return "EncoderDecoderTransformer"; }

  // src: (B, S), tgt: (B, T) ids (i32/i64) -> logits (B, T, vocab_tgt_size)
  Tensor forward(const Tensor& src, const Tensor& tgt) const;
  // src: (B, S) -> memory (B, S, d)
  Tensor encode(const Tensor& src) const;
  // tgt: (B, T) -> logits (B, T, V). Without a cache tgt is the whole prefix; with one, only the
  // new tokens (positions continue after those already in the cache; the cross-attention keys
  // are computed from memory on the first call and reused).
  Tensor decode(const Tensor& tgt, const Tensor& memory, const Tensor& src, DecoderCache* cache = nullptr) const;
  DecoderCache new_cache() const;
  // hidden (..., d) -> logits (..., V)
  Tensor project(const Tensor& hidden) const;
  const EncoderDecoderConfig& config() const { return cfg_; }

  std::shared_ptr<TransformerEncoder> encoder;
  std::shared_ptr<TransformerDecoder> decoder;
  std::shared_ptr<nn::Projection> lm_head;  // null when tied
  Tensor final_logits_bias;                 // (V), tied + use_final_linear_bias only

 private:
  EncoderDecoderConfig cfg_;
};

}  // namespace knot::models
