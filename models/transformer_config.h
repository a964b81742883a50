// What the two Transformer configs (EncoderDecoderConfig, DecoderOnlyConfig) share: the keys both
// read and write under kanformer's names (widths, heads, FFN, attention-output and head biases, tying,
// dropout, context, LayerNorm, attention scale, activation checkpointing) and the block settings built
// from them. Templates over the config type, whose fields carry the same names.
#pragma once

#include "models/config.h"
#include "nn/transformer.h"

namespace knot::models {

// Reads the shared keys into `c`, whose fields give the defaults.
template <typename C>
void read_transformer_keys(ConfigReader& r, C& c) {
  c.embedding_dim = r.get<int64_t>("embedding_dim", c.embedding_dim, "model width d");
  c.query_key_dim =
      r.get<int64_t>("query_key_dim", c.query_key_dim, "total query/key width over the heads (0 = embedding_dim)");
  c.value_dim = r.get<int64_t>("value_dim", c.value_dim, "total value width over the heads (0 = embedding_dim)");
  c.num_heads = r.get<int64_t>("num_heads", c.num_heads, "attention heads (must divide the query/key and value widths)");
  c.ffn_hidden_dim = r.get<int64_t>("ffn_hidden_dim", c.ffn_hidden_dim, "FFN hidden width");
  c.ffn_activation =
      r.template get<std::string>("ffn_activation", c.ffn_activation, "FFN activation: relu, gelu, silu, swiglu, geglu, ...");
  c.use_final_linear_mha_bias =
      r.get<bool>("use_final_linear_mha_bias", c.use_final_linear_mha_bias, "bias on the attention's output projection");
  c.use_final_linear_bias = r.get<bool>("use_final_linear_bias", c.use_final_linear_bias, "bias on the output head");
  c.tie_output_embedding = r.get<bool>("tie_output_embedding", c.tie_output_embedding,
                                       "the output head shares the (target) token embedding, when it is a Linear");
  c.dropout_rate = r.get<double>("dropout_rate", c.dropout_rate, "dropout after embeddings, attention and FFN");
  c.attention_dropout_rate =
      r.get<double>("attention_dropout_rate", c.attention_dropout_rate, "dropout on the attention weights");
  c.max_length = r.get<int64_t>("max_length", c.max_length, "positions the model encodes (the context)");
  c.layer_norm_eps = r.get<double>("layer_norm_eps", c.layer_norm_eps, "LayerNorm epsilon");
  c.pre_layer_norm = r.get<bool>("pre_layer_norm", c.pre_layer_norm,
                                 "LayerNorm before each sublayer (pre-LN) instead of after (post-LN, kanformer)");
  c.attention_scale = r.template get<std::string>(
      "attention_scale", c.attention_scale,
      "\"query_key_dim\" (kanformer: 1/sqrt(query_key_dim)) or \"head_dim\" (1/sqrt(head width))");
  c.activation_checkpointing = r.get<bool>("activation_checkpointing", c.activation_checkpointing,
                                           "recompute each block's activations in backward: same gradients, less memory");
}

// Writes the shared keys of `c` into `j`.
template <typename C>
void write_transformer_keys(const C& c, Json& j) {
  j["embedding_dim"] = c.embedding_dim;
  j["query_key_dim"] = c.query_key_dim;
  j["value_dim"] = c.value_dim;
  j["num_heads"] = c.num_heads;
  j["ffn_hidden_dim"] = c.ffn_hidden_dim;
  j["ffn_activation"] = c.ffn_activation;
  j["use_final_linear_mha_bias"] = c.use_final_linear_mha_bias;
  j["use_final_linear_bias"] = c.use_final_linear_bias;
  j["tie_output_embedding"] = c.tie_output_embedding;
  j["dropout_rate"] = c.dropout_rate;
  j["attention_dropout_rate"] = c.attention_dropout_rate;
  j["max_length"] = c.max_length;
  j["layer_norm_eps"] = c.layer_norm_eps;
  j["pre_layer_norm"] = c.pre_layer_norm;
  j["attention_scale"] = c.attention_scale;
  j["activation_checkpointing"] = c.activation_checkpointing;
}

// The block settings both configs give alike (the FFN biases and the positions are each config's).
template <typename C>
nn::TransformerBlockConfig transformer_block(const C& c) {
  nn::TransformerBlockConfig b;
  b.d_model = c.embedding_dim;
  b.num_heads = c.num_heads;
  b.query_key_dim = c.query_key_dim;
  b.value_dim = c.value_dim;
  b.ffn_hidden_dim = c.ffn_hidden_dim;
  b.ffn_activation = c.ffn_activation;
  b.attention_out_bias = c.use_final_linear_mha_bias;
  b.dropout = c.dropout_rate;
  b.attention_dropout = c.attention_dropout_rate;
  b.layer_norm_eps = c.layer_norm_eps;
  b.pre_layer_norm = c.pre_layer_norm;
  b.attention_scale = c.attention_scale;
  b.proj = c.attention_proj;
  b.ffn_proj = c.ffn_proj;
  return b;
}

}  // namespace knot::models
