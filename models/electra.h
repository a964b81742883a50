// ELECTRA (Clark et al. 2020, "ELECTRA: Pre-training Text Encoders as Discriminators Rather Than
// Generators") with KAN layers where the config puts them (the KAN-Electra idea, built from the
// paper's recipe).
//
//   embeddings (shared):  LN(word(ids) + position(0..T) + token_type(types)) -> dropout   (B, T, E)
//                         LayerNorm eps 1e-12; E = embedding_size
//   generator:            [embeddings_project E -> Hg] -> Ng encoder blocks -> head:
//                         dense Hg -> E -> GELU -> LayerNorm -> h · word_embeddingsᵀ + bias  (B, T, V)
//   discriminator:        [embeddings_project E -> Hd] -> Nd encoder blocks -> head:
//                         dense Hd -> Hd -> GELU -> dense Hd -> 1                           (B, T)
//   classifier (num_labels > 0): first token of the discriminator -> dense -> GELU -> dense
//                         Hd -> num_labels                                                  (B, C)
// Generator and discriminator share the whole embedding module (word, position, token type, LN),
// as in the paper; the generator's output layer is tied to the word embeddings. Blocks are post-LN
// with GELU FFNs and 1/sqrt(head_dim) attention scale; padding (pad_token_id) is masked out of
// every attention.
// KAN placement, spelled as the other models: "projection" (every site) and "projections":
// {"attention", "ffn", "heads"} pick the layer of the q/k/v/out projections, the FFNs and the
// head/classifier dense layers (the KAN sites share one kind and options); everything else
// (embeddings, embeddings_project) stays Linear. The earlier "kan": {"kind", "options", "attention",
// "ffn", "heads"} is read with a deprecation warning.
//
// Parameter names: embeddings.{word_embeddings,position_embeddings,token_type_embeddings,
// LayerNorm}.*, generator.{embeddings_project,layers.{i}}.*, generator.head.{dense,LayerNorm}.*,
// generator.head.output_bias, discriminator.{embeddings_project,layers.{i}}.*,
// discriminator.head.{dense,dense_prediction}.*, classifier.{dense,out_proj}.* (Hugging Face's ElectraModel names for the embeddings and heads;
// blocks use the names of nn/transformer.h).
#pragma once

#include <memory>
#include <string>

#include "models/config.h"
#include "nn/linear.h"
#include "nn/transformer.h"

namespace knot::models {

struct ElectraEncoderSize {
  int64_t hidden_size = 256;
  int64_t num_layers = 12;
  int64_t num_heads = 4;
  int64_t intermediate_size = 1024;
};

struct ElectraConfig {
  int64_t vocab_size = 30522;
  int64_t embedding_size = 128;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  int64_t pad_token_id = 0;
  double layer_norm_eps = 1e-12;
  double hidden_dropout = 0.1;
  double attention_dropout = 0.1;
  std::string hidden_act = "gelu";
  ElectraEncoderSize generator{64, 12, 1, 256};
  ElectraEncoderSize discriminator{256, 12, 4, 1024};
  int64_t num_labels = 0;  // > 0 adds the sequence-classification head
  nn::ProjectionSpec kan{"mlp", nlohmann::json::object()};
  bool kan_attention = false;
  bool kan_ffn = false;
  bool kan_heads = false;
  // Training only: each encoder block of both stacks recomputes its activations in backward
  // (autograd/checkpoint.h) instead of keeping them; same gradients, less activation memory.
  bool activation_checkpointing = false;
  // Biases on the attention's query/key/value projections, as BERT's and Hugging Face's ELECTRA
  // have (off by default: knot's ELECTRA runs so far have none). Needed to import a published
  // Hugging Face ELECTRA (knot import --format hf-electra).
  bool attention_qkv_bias = false;

  static ElectraConfig from_json(const Json& j);  // "model": "electra"; unknown keys are errors
  Json to_json() const;  // today's spelling ("projection"/"projections")
  // The spelling before "projection" (the KAN sites as "kan"): what checkpoints' model_config_sha256
  // hashes, so that runs from before and after the change load each other's checkpoints.
  Json legacy_json() const;
};

// One encoder stack (generator or discriminator) over the shared embeddings' output.
class ElectraEncoder : public nn::Module {
 public:
  ElectraEncoder(const ElectraConfig& cfg, const ElectraEncoderSize& size);
  std::string type_name() const override { return "ElectraEncoder"; }
  // emb: (B, T, E) -> (B, T, H)
  Tensor forward(const Tensor& emb, const Tensor& padding_mask) const;
  void set_head(std::shared_ptr<nn::Module> head);  // registered as "head"

  std::shared_ptr<nn::Linear> embeddings_project;  // null when E == H
  std::shared_ptr<nn::ModuleList> layers;

 private:
  bool checkpoint_blocks_;
};

class Electra : public nn::Module {
 public:
  explicit Electra(const ElectraConfig& cfg);
  std::string type_name() const override { return "Electra"; }

  // input_ids, token_type_ids: (B, T) (token types may be undefined = all 0) -> (B, T, E)
  Tensor embed(const Tensor& input_ids, const Tensor& token_type_ids = Tensor()) const;
  // Masked-LM logits of the generator: (B, T, vocab_size)
  Tensor generator_logits(const Tensor& input_ids, const Tensor& token_type_ids = Tensor()) const;
  // Replaced-token-detection logits of the discriminator: (B, T)
  Tensor discriminator_logits(const Tensor& input_ids, const Tensor& token_type_ids = Tensor()) const;
  // Discriminator hidden states (B, T, Hd)
  Tensor discriminator_hidden(const Tensor& input_ids, const Tensor& token_type_ids = Tensor()) const;
  // Sequence-classification logits (B, num_labels); needs num_labels > 0.
  Tensor classify(const Tensor& input_ids, const Tensor& token_type_ids = Tensor()) const;
  const ElectraConfig& config() const { return cfg_; }

  std::shared_ptr<nn::Module> embeddings;
  std::shared_ptr<nn::Embedding> word_embeddings, position_embeddings, token_type_embeddings;
  std::shared_ptr<nn::LayerNorm> embeddings_layer_norm;
  std::shared_ptr<ElectraEncoder> generator, discriminator;
  std::shared_ptr<nn::Projection> gen_dense, disc_dense, disc_prediction, cls_dense, cls_out;
  std::shared_ptr<nn::LayerNorm> gen_layer_norm;
  Tensor gen_output_bias;  // (vocab_size)

 private:
  ElectraConfig cfg_;
  std::shared_ptr<nn::Dropout> dropout_;
};

}  // namespace knot::models
