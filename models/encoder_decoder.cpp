// EncoderDecoderTransformer (see encoder_decoder.h).
#include "models/encoder_decoder.h"
#include "models/transformer_config.h"

#include <cmath>

#include "autograd/checkpoint.h"
#include "autograd/node.h"
#include "ops/ops.h"

namespace knot::models {

EncoderDecoderConfig EncoderDecoderConfig::from_json(const Json& j) {
  ConfigReader r(j, "encoder_decoder");
  const std::string model = r.get<std::string>("model", "encoder_decoder", "the model kind (set by the task)");
  KNOT_CHECK(model == "encoder_decoder", "config 'encoder_decoder': key 'model' is '{}', expected 'encoder_decoder'",
             model);
  EncoderDecoderConfig c;
  c.num_encoder_layers = r.get<int64_t>("num_encoder_layers", c.num_encoder_layers, "encoder blocks");
  c.num_decoder_layers = r.get<int64_t>("num_decoder_layers", c.num_decoder_layers, "decoder blocks");
  c.vocab_src_size = r.require<int64_t>("vocab_src_size", "source vocabulary size (set by the task from the tokenizer)");
  c.vocab_tgt_size = r.require<int64_t>("vocab_tgt_size", "target vocabulary size (set by the task from the tokenizer)");
  c.pad_src_idx = r.get<int64_t>("pad_src_idx", c.pad_src_idx, "source padding id (set by the task from the tokenizer)");
  c.pad_tgt_idx = r.get<int64_t>("pad_tgt_idx", c.pad_tgt_idx, "target padding id (set by the task from the tokenizer)");
  for (const char* k : {"model", "vocab_src_size", "vocab_tgt_size", "pad_src_idx", "pad_tgt_idx"}) r.filled_by_task(k);
  read_transformer_keys(r, c);
  c.use_ffn_bias_1 = r.get<bool>("use_ffn_bias_1", c.use_ffn_bias_1, "biases on the FFN's input (and gate) projections");
  c.use_ffn_bias_2 = r.get<bool>("use_ffn_bias_2", c.use_ffn_bias_2, "bias on the FFN's output projection");
  const ProjectionSites sites = read_projection_sites(r);
  c.projection = sites.all;
  c.attention_proj = sites.attention;
  c.ffn_proj = sites.ffn;
  c.output_proj = sites.output;
  r.finish();
  const std::pair<const char*, int64_t> positive[] = {
      {"vocab_src_size", c.vocab_src_size}, {"vocab_tgt_size", c.vocab_tgt_size}, {"embedding_dim", c.embedding_dim},
      {"num_heads", c.num_heads},           {"ffn_hidden_dim", c.ffn_hidden_dim}, {"max_length", c.max_length}};
  for (const auto& [key, v] : positive)
    KNOT_CHECK(v > 0, "config 'encoder_decoder': key '{}' must be positive, got {}", key, v);
  for (const auto& [key, v] : {std::pair<const char*, int64_t>{"num_encoder_layers", c.num_encoder_layers},
                               {"num_decoder_layers", c.num_decoder_layers},
                               {"query_key_dim", c.query_key_dim},
                               {"value_dim", c.value_dim}})
    KNOT_CHECK(v >= 0, "config 'encoder_decoder': key '{}' must be >= 0, got {}", key, v);
  KNOT_CHECK(c.pad_src_idx < c.vocab_src_size && c.pad_tgt_idx < c.vocab_tgt_size,
             "config 'encoder_decoder': pad ids ({}, {}) must be below the vocab sizes ({}, {})", c.pad_src_idx,
             c.pad_tgt_idx, c.vocab_src_size, c.vocab_tgt_size);
  KNOT_CHECK(c.attention_scale == "query_key_dim" || c.attention_scale == "head_dim",
             "config 'encoder_decoder': key 'attention_scale' must be 'query_key_dim' or 'head_dim', got '{}'",
             c.attention_scale);
  return c;
}

bool EncoderDecoderConfig::uniform_projection() const {
  const Json all = projection.to_json();
  return attention_proj.to_json() == all && ffn_proj.to_json() == all && output_proj.to_json() == all;
}

Json EncoderDecoderConfig::to_json() const {
  Json j{{"model", "encoder_decoder"},
         {"num_encoder_layers", num_encoder_layers},
         {"num_decoder_layers", num_decoder_layers},
         {"vocab_src_size", vocab_src_size},
         {"vocab_tgt_size", vocab_tgt_size},
         {"pad_src_idx", pad_src_idx},
         {"pad_tgt_idx", pad_tgt_idx},
         {"use_ffn_bias_1", use_ffn_bias_1},
         {"use_ffn_bias_2", use_ffn_bias_2},
         {"projection", projection.to_json()}};
  write_transformer_keys(*this, j);
  if (!uniform_projection())
    j["projections"] = {{"attention", attention_proj.to_json()}, {"ffn", ffn_proj.to_json()}, {"output", output_proj.to_json()}};
  return j;
}

nn::TransformerBlockConfig EncoderDecoderConfig::block() const {
  nn::TransformerBlockConfig b = transformer_block(*this);
  b.ffn_bias_in = use_ffn_bias_1;
  b.ffn_bias_out = use_ffn_bias_2;
  return b;
}

// ---- encoder / decoder stacks ----

TransformerEncoder::TransformerEncoder(const EncoderDecoderConfig& cfg)
    : embed_scale_(std::sqrt(static_cast<double>(cfg.embedding_dim))),
      checkpoint_blocks_(cfg.activation_checkpointing) {
  embed_tokens = register_module("embed_tokens", std::make_shared<nn::Embedding>(cfg.vocab_src_size, cfg.embedding_dim));
  layers = register_module("layers", std::make_shared<nn::ModuleList>());
  const nn::TransformerBlockConfig bc = cfg.block();
  for (int64_t i = 0; i < cfg.num_encoder_layers; ++i) layers->push_back(std::make_shared<nn::EncoderBlock>(bc));
  if (cfg.pre_layer_norm)
    layer_norm = register_module("layer_norm", std::make_shared<nn::LayerNorm>(cfg.embedding_dim, cfg.layer_norm_eps));
  pe_ = register_module("pe", std::make_shared<nn::SinusoidalPositionalEncoding>(cfg.embedding_dim, cfg.max_length));
  dropout_ = register_module("dropout", std::make_shared<nn::Dropout>(cfg.dropout_rate));
}

Tensor TransformerEncoder::forward(const Tensor& src, const Tensor& src_padding_mask) const {
  Tensor h = dropout_->forward(pe_->forward(mul(embed_tokens->forward(src), embed_scale_)));
  h = nn::run_encoder_blocks(*layers, h, src_padding_mask, checkpoint_blocks_ && is_training());
  return layer_norm ? layer_norm->forward(h) : h;
}

TransformerDecoder::TransformerDecoder(const EncoderDecoderConfig& cfg)
    : embed_scale_(std::sqrt(static_cast<double>(cfg.embedding_dim))),
      checkpoint_blocks_(cfg.activation_checkpointing) {
  embed_tokens = register_module("embed_tokens", std::make_shared<nn::Embedding>(cfg.vocab_tgt_size, cfg.embedding_dim));
  layers = register_module("layers", std::make_shared<nn::ModuleList>());
  const nn::TransformerBlockConfig bc = cfg.block();
  for (int64_t i = 0; i < cfg.num_decoder_layers; ++i) layers->push_back(std::make_shared<nn::DecoderBlock>(bc));
  if (cfg.pre_layer_norm)
    layer_norm = register_module("layer_norm", std::make_shared<nn::LayerNorm>(cfg.embedding_dim, cfg.layer_norm_eps));
  pe_ = register_module("pe", std::make_shared<nn::SinusoidalPositionalEncoding>(cfg.embedding_dim, cfg.max_length));
  dropout_ = register_module("dropout", std::make_shared<nn::Dropout>(cfg.dropout_rate));
}

Tensor TransformerDecoder::forward(const Tensor& tgt, int64_t offset, const Tensor& memory,
                                   const Tensor& self_padding_mask, const Tensor& memory_padding_mask,
                                   DecoderCache* cache) const {
  Tensor h = dropout_->forward(pe_->forward(mul(embed_tokens->forward(tgt), embed_scale_), offset));
  const bool checkpointed = checkpoint_blocks_ && is_training() && !cache;
  for (size_t i = 0; i < layers->size(); ++i) {
    if (checkpointed) {
      auto block = std::dynamic_pointer_cast<nn::DecoderBlock>((*layers)[i]);
      h = checkpoint(
          [block](const std::vector<Tensor>& in) { return block->forward(in[0], in[1], in[2], in[3]); },
          {h, memory, self_padding_mask, memory_padding_mask});
    } else if (needs_grad({memory})) {
      // Each block sees memory through its own view node, so backward first sums the block's two
      // uses (cross-attention keys and values) and then adds the per-block sums into memory's
      // gradient, block after block. A checkpointed block hands memory exactly that per-block sum,
      // so both paths add in the same order and give bit-identical gradients (floating-point
      // addition is not associative: k3 + v3 + k2 + v2 + ... summed in one slot would differ).
      h = layers->at<nn::DecoderBlock>(i).forward(h, reshape(memory, memory.shape()), self_padding_mask,
                                                  memory_padding_mask, cache ? &cache->layers[i] : nullptr);
    } else {
      h = layers->at<nn::DecoderBlock>(i).forward(h, memory, self_padding_mask, memory_padding_mask,
                                                  cache ? &cache->layers[i] : nullptr);
    }
  }
  return layer_norm ? layer_norm->forward(h) : h;
}

// ---- the model ----

EncoderDecoderTransformer::EncoderDecoderTransformer(const EncoderDecoderConfig& cfg) : cfg_(cfg) {
  encoder = register_module("encoder", std::make_shared<TransformerEncoder>(cfg));
  decoder = register_module("decoder", std::make_shared<TransformerDecoder>(cfg));
  if (!cfg.tie_output_embedding) {
    lm_head = register_module("lm_head", cfg.output_proj.make(cfg.embedding_dim, cfg.vocab_tgt_size,
                                                              cfg.use_final_linear_bias));
  } else if (cfg.use_final_linear_bias) {
    final_logits_bias = register_parameter("final_logits_bias", zeros({cfg.vocab_tgt_size}));
  }
}

Tensor EncoderDecoderTransformer::project(const Tensor& hidden) const {
  if (lm_head) return lm_head->forward(hidden);
  return linear(hidden, decoder->embed_tokens->weight, final_logits_bias);
}

Tensor EncoderDecoderTransformer::encode(const Tensor& src) const {
  KNOT_CHECK(src.dim() == 2, "EncoderDecoderTransformer: src must be (B, S) ids, got {}", shape_str(src.shape()));
  return encoder->forward(src, nn::padding_mask(src, cfg_.pad_src_idx));
}

DecoderCache EncoderDecoderTransformer::new_cache() const {
  DecoderCache c;
  c.layers.resize(decoder->layers->size());
  return c;
}

Tensor EncoderDecoderTransformer::decode(const Tensor& tgt, const Tensor& memory, const Tensor& src,
                                         DecoderCache* cache) const {
  KNOT_CHECK(tgt.dim() == 2, "EncoderDecoderTransformer: tgt must be (B, T) ids, got {}", shape_str(tgt.shape()));
  KNOT_CHECK(src.dim() == 2 && src.size(0) == tgt.size(0),
             "EncoderDecoderTransformer: src {} and tgt {} must be (B, S) and (B, T) with the same B",
             shape_str(src.shape()), shape_str(tgt.shape()));
  const Tensor src_mask = nn::padding_mask(src, cfg_.pad_src_idx);
  int64_t offset = 0;
  Tensor self_mask;
  if (cache) {
    KNOT_CHECK(cache->layers.size() == decoder->layers->size(),
               "EncoderDecoderTransformer: cache has {} layers, the decoder {} (use new_cache())", cache->layers.size(),
               decoder->layers->size());
    const int64_t B = tgt.size(0), T = tgt.size(1);
    offset = cache->length();
    if (cache->tgt_ids.empty()) cache->tgt_ids.resize(static_cast<size_t>(B));
    KNOT_CHECK(static_cast<int64_t>(cache->tgt_ids.size()) == B,
               "EncoderDecoderTransformer: cache holds batch {} but tgt has batch {}", cache->tgt_ids.size(), B);
    const std::vector<int64_t> ids = tgt.to_vector<int64_t>();
    for (int64_t b = 0; b < B; ++b)
      cache->tgt_ids[b].insert(cache->tgt_ids[b].end(), ids.begin() + b * T, ids.begin() + (b + 1) * T);
    if (cfg_.pad_tgt_idx >= 0) {
      std::vector<int64_t> all;
      for (const auto& row : cache->tgt_ids) all.insert(all.end(), row.begin(), row.end());
      self_mask = nn::padding_mask(from_vector(all, {B, offset + T}).to(tgt.device()), cfg_.pad_tgt_idx);
    }
  } else {
    self_mask = nn::padding_mask(tgt, cfg_.pad_tgt_idx);
  }
  return project(decoder->forward(tgt, offset, memory, self_mask, src_mask, cache));
}

Tensor EncoderDecoderTransformer::forward(const Tensor& src, const Tensor& tgt) const {
  return decode(tgt, encode(src), src);
}

}  // namespace knot::models
