// ELECTRA generator + discriminator with configurable KAN placement (see electra.h).
#include "models/electra.h"

#include "nn/linear.h"
#include "ops/ops.h"

namespace knot::models {
namespace {

// A named group of submodules/parameters (PyTorch's nn.Module used as a namespace).
class Container : public nn::Module {
 public:
  explicit Container(std::string type) : type_(std::move(type)) {}
  std::string type_name() const override { return type_; }
  template <typename M>
  std::shared_ptr<M> add(const std::string& name, std::shared_ptr<M> m) {
    return register_module(name, std::move(m));
  }
  Tensor add_parameter(const std::string& name, const Tensor& t) { return register_parameter(name, t); }

 private:
  std::string type_;
};

ElectraEncoderSize read_size(const Json& j, const std::string& ctx, ElectraEncoderSize s) {
  ConfigReader r(j, ctx);
  s.hidden_size = r.get<int64_t>("hidden_size", s.hidden_size, "hidden width");
  s.num_layers = r.get<int64_t>("num_layers", s.num_layers, "decoder blocks");
  s.num_heads = r.get<int64_t>("num_heads", s.num_heads, "attention heads (must divide the query/key and value widths)");
  s.intermediate_size = r.get<int64_t>("intermediate_size", s.intermediate_size, "FFN hidden width");
  r.finish();
  for (const auto& [key, v] : {std::pair<const char*, int64_t>{"hidden_size", s.hidden_size},
                               {"num_heads", s.num_heads},
                               {"intermediate_size", s.intermediate_size}})
    KNOT_CHECK(v > 0, "config '{}': key '{}' must be positive, got {}", ctx, key, v);
  KNOT_CHECK(s.num_layers >= 0, "config '{}': key 'num_layers' must be >= 0, got {}", ctx, s.num_layers);
  KNOT_CHECK(s.hidden_size % s.num_heads == 0, "config '{}': key 'hidden_size' ({}) must divide by 'num_heads' ({})",
             ctx, s.hidden_size, s.num_heads);
  return s;
}

Json size_json(const ElectraEncoderSize& s) {
  return {{"hidden_size", s.hidden_size},
          {"num_layers", s.num_layers},
          {"num_heads", s.num_heads},
          {"intermediate_size", s.intermediate_size}};
}

nn::ProjectionSpec pick(const ElectraConfig& c, bool use_kan) { return use_kan ? c.kan : nn::ProjectionSpec{}; }

}  // namespace

ElectraConfig ElectraConfig::from_json(const Json& j) {
  ConfigReader r(j, "electra");
  const std::string model = r.require<std::string>("model", "the model kind (set by the task)");
  KNOT_CHECK(model == "electra", "config 'electra': key 'model' is '{}', expected 'electra'", model);
  ElectraConfig c;
  c.vocab_size = r.get<int64_t>("vocab_size", c.vocab_size, "vocabulary size (set by the task from the tokenizer)");
  c.embedding_size = r.get<int64_t>("embedding_size", c.embedding_size, "embedding width (projected to each stack's hidden size when it differs)");
  c.max_position_embeddings = r.get<int64_t>("max_position_embeddings", c.max_position_embeddings, "positions the model encodes");
  c.type_vocab_size = r.get<int64_t>("type_vocab_size", c.type_vocab_size, "token type (segment) ids");
  c.pad_token_id = r.get<int64_t>("pad_token_id", c.pad_token_id, "padding id (set by the task from the vocabulary)");
  for (const char* k : {"model", "vocab_size", "pad_token_id"}) r.filled_by_task(k);
  c.layer_norm_eps = r.get<double>("layer_norm_eps", c.layer_norm_eps, "LayerNorm epsilon");
  c.hidden_dropout = r.get<double>("hidden_dropout", c.hidden_dropout, "dropout after embeddings, attention and FFN");
  c.attention_dropout = r.get<double>("attention_dropout", c.attention_dropout, "dropout on the attention weights");
  c.hidden_act = r.get<std::string>("hidden_act", c.hidden_act, "FFN activation (gelu as BERT and ELECTRA)");
  c.num_labels = r.get<int64_t>("num_labels", c.num_labels, "> 0 adds a sequence-classification head with this many labels");
  c.activation_checkpointing = r.get<bool>("activation_checkpointing", c.activation_checkpointing, "recompute each block's activations in backward: same gradients, less memory");
  c.attention_qkv_bias = r.get<bool>("attention_qkv_bias", c.attention_qkv_bias, "biases on the attention's query/key/value projections (BERT, Hugging Face ELECTRA)");
  c.generator = read_size(r.get<Json>("generator", Json::object(), "the generator stack (model.generator.*)"),
                          "electra.generator", c.generator);
  c.discriminator = read_size(r.get<Json>("discriminator", Json::object(), "the discriminator stack (model.discriminator.*)"),
                              "electra.discriminator", c.discriminator);
  // The KAN sites, spelled as the other models spell them: "projection" (every site) and
  // "projections" {"attention", "ffn", "heads"} (each optional). ELECTRA's KAN sites share one spec.
  // The earlier "kan" object ({"kind", "options", "attention", "ffn", "heads"}) is read with a
  // deprecation warning.
  if (r.has("kan")) {
    KNOT_CHECK(!r.has("projection") && !r.has("projections"),
               "config 'electra': 'kan' and 'projection'/'projections' are the same setting (the old and the new "
               "spelling); keep 'projection'/'projections'");
    config::warn_deprecated("electra", "kan",
                            "'projection' (every site) or 'projections': {\"attention\", \"ffn\", \"heads\"}");
    ConfigReader kr = r.child("kan");
    c.kan_attention = kr.get<bool>("attention", false);
    c.kan_ffn = kr.get<bool>("ffn", false);
    c.kan_heads = kr.get<bool>("heads", false);
    Json spec = {{"kind", kr.require<std::string>("kind")}, {"options", kr.get<Json>("options", Json::object())}};
    kr.finish();
    c.kan = read_projection(spec, "electra.kan");
  } else {
    const nn::ProjectionSpec all = read_projection(
        r.get<Json>("projection", Json("mlp"),
                    "the layer of every site (attention q/k/v/out, FFNs, heads and classifier): \"mlp\" or "
                    "{\"kind\": \"kan_<basis>\", \"options\": {...}} (knot config --schema bases)"),
        "electra.projection");
    nn::ProjectionSpec site[3] = {all, all, all};
    ConfigReader p = r.child("projections", "per-site layers overriding 'projection' (each optional)");
    const char* names[3] = {"attention", "ffn", "heads"};
    const char* docs[3] = {"the q/k/v/out projections of every attention block", "the two layers of every FFN",
                           "the heads' and classifier's dense layers"};
    for (int i = 0; i < 3; ++i) {
      const Json v = p.get<Json>(names[i], Json(), docs[i]);
      if (!v.is_null()) site[i] = read_projection(v, std::string("electra.projections.") + names[i]);
    }
    p.finish();
    const nn::ProjectionSpec* kan = nullptr;
    for (const auto& s : site) {
      if (!s.is_kan()) continue;
      KNOT_CHECK(!kan || s.to_json() == kan->to_json(),
                 "config 'electra': ELECTRA's KAN sites share one layer kind and options, got {} and {}",
                 kan ? kan->to_json().dump() : "", s.to_json().dump());
      kan = &s;
    }
    if (kan) c.kan = *kan;
    c.kan_attention = site[0].is_kan();
    c.kan_ffn = site[1].is_kan();
    c.kan_heads = site[2].is_kan();
  }
  r.finish();
  for (const auto& [key, v] : {std::pair<const char*, int64_t>{"vocab_size", c.vocab_size},
                               {"embedding_size", c.embedding_size},
                               {"max_position_embeddings", c.max_position_embeddings},
                               {"type_vocab_size", c.type_vocab_size}})
    KNOT_CHECK(v > 0, "config 'electra': key '{}' must be positive, got {}", key, v);
  KNOT_CHECK(c.num_labels >= 0, "config 'electra': key 'num_labels' must be >= 0, got {}", c.num_labels);
  KNOT_CHECK(c.pad_token_id < c.vocab_size, "config 'electra': pad_token_id {} >= vocab_size {}", c.pad_token_id,
             c.vocab_size);
  KNOT_CHECK(nn::is_ffn_activation(c.hidden_act), "config 'electra': unknown hidden_act '{}'", c.hidden_act);
  return c;
}

Json ElectraConfig::to_json() const {
  Json j = legacy_json();
  j.erase("kan");
  const Json spec = kan.to_json();
  if (kan_attention && kan_ffn && kan_heads)
    j["projection"] = spec;
  else if (kan_attention || kan_ffn || kan_heads)
    j["projections"] = {{"attention", kan_attention ? spec : Json("mlp")},
                        {"ffn", kan_ffn ? spec : Json("mlp")},
                        {"heads", kan_heads ? spec : Json("mlp")}};
  return j;
}

Json ElectraConfig::legacy_json() const {
  Json j{{"model", "electra"},
         {"vocab_size", vocab_size},
         {"embedding_size", embedding_size},
         {"max_position_embeddings", max_position_embeddings},
         {"type_vocab_size", type_vocab_size},
         {"pad_token_id", pad_token_id},
         {"layer_norm_eps", layer_norm_eps},
         {"hidden_dropout", hidden_dropout},
         {"attention_dropout", attention_dropout},
         {"hidden_act", hidden_act},
         {"num_labels", num_labels},
         {"generator", size_json(generator)},
         {"discriminator", size_json(discriminator)},
         {"kan",
          {{"kind", kan.kind}, {"options", kan.options}, {"attention", kan_attention}, {"ffn", kan_ffn},
           {"heads", kan_heads}}},
         {"activation_checkpointing", activation_checkpointing}};
  // Written only when set, so the configs (and checkpoint hashes) of runs without it stay as they were.
  if (attention_qkv_bias) j["attention_qkv_bias"] = true;
  return j;
}

ElectraEncoder::ElectraEncoder(const ElectraConfig& cfg, const ElectraEncoderSize& size)
    : checkpoint_blocks_(cfg.activation_checkpointing) {
  if (size.hidden_size != cfg.embedding_size)
    embeddings_project =
        register_module("embeddings_project", std::make_shared<nn::Linear>(cfg.embedding_size, size.hidden_size));
  layers = register_module("layers", std::make_shared<nn::ModuleList>());
  nn::TransformerBlockConfig b;
  b.d_model = size.hidden_size;
  b.num_heads = size.num_heads;
  b.ffn_hidden_dim = size.intermediate_size;
  b.ffn_activation = cfg.hidden_act;
  b.attention_out_bias = true;
  b.attention_qkv_bias = cfg.attention_qkv_bias;
  b.dropout = cfg.hidden_dropout;
  b.attention_dropout = cfg.attention_dropout;
  b.layer_norm_eps = cfg.layer_norm_eps;
  b.attention_scale = "head_dim";
  b.proj = pick(cfg, cfg.kan_attention);
  b.ffn_proj = pick(cfg, cfg.kan_ffn);
  for (int64_t i = 0; i < size.num_layers; ++i) layers->push_back(std::make_shared<nn::EncoderBlock>(b));
}

void ElectraEncoder::set_head(std::shared_ptr<nn::Module> head) { register_module("head", std::move(head)); }

Tensor ElectraEncoder::forward(const Tensor& emb, const Tensor& padding_mask) const {
  Tensor h = embeddings_project ? embeddings_project->forward(emb) : emb;
  h = nn::run_encoder_blocks(*layers, h, padding_mask, checkpoint_blocks_ && is_training());
  return h;
}

Electra::Electra(const ElectraConfig& cfg) : cfg_(cfg) {
  auto emb = std::make_shared<Container>("ElectraEmbeddings");
  word_embeddings = emb->add("word_embeddings",
                             std::make_shared<nn::Embedding>(cfg.vocab_size, cfg.embedding_size, cfg.pad_token_id));
  position_embeddings = emb->add("position_embeddings",
                                 std::make_shared<nn::Embedding>(cfg.max_position_embeddings, cfg.embedding_size));
  token_type_embeddings =
      emb->add("token_type_embeddings", std::make_shared<nn::Embedding>(cfg.type_vocab_size, cfg.embedding_size));
  embeddings_layer_norm = emb->add("LayerNorm", std::make_shared<nn::LayerNorm>(cfg.embedding_size, cfg.layer_norm_eps));
  embeddings = register_module("embeddings", std::shared_ptr<nn::Module>(emb));

  const nn::ProjectionSpec head_spec = pick(cfg, cfg.kan_heads);
  generator = register_module("generator", std::make_shared<ElectraEncoder>(cfg, cfg.generator));
  auto gen_head = std::make_shared<Container>("ElectraGeneratorHead");
  gen_dense = gen_head->add("dense", head_spec.make(cfg.generator.hidden_size, cfg.embedding_size, true));
  gen_layer_norm = gen_head->add("LayerNorm", std::make_shared<nn::LayerNorm>(cfg.embedding_size, cfg.layer_norm_eps));
  gen_output_bias = gen_head->add_parameter("output_bias", zeros({cfg.vocab_size}));
  generator->set_head(gen_head);

  discriminator = register_module("discriminator", std::make_shared<ElectraEncoder>(cfg, cfg.discriminator));
  auto disc_head = std::make_shared<Container>("ElectraDiscriminatorHead");
  const int64_t Hd = cfg.discriminator.hidden_size;
  disc_dense = disc_head->add("dense", head_spec.make(Hd, Hd, true));
  disc_prediction = disc_head->add("dense_prediction", head_spec.make(Hd, 1, true));
  discriminator->set_head(disc_head);

  if (cfg.num_labels > 0) {
    auto cls = std::make_shared<Container>("ElectraClassificationHead");
    cls_dense = cls->add("dense", head_spec.make(Hd, Hd, true));
    cls_out = cls->add("out_proj", head_spec.make(Hd, cfg.num_labels, true));
    register_module("classifier", std::shared_ptr<nn::Module>(cls));
  }
  dropout_ = register_module("dropout", std::make_shared<nn::Dropout>(cfg.hidden_dropout));
}

Tensor Electra::embed(const Tensor& ids, const Tensor& types) const {
  KNOT_CHECK(ids.dim() == 2, "Electra: input_ids must be (B, T), got {}", shape_str(ids.shape()));
  const int64_t T = ids.size(1);
  KNOT_CHECK(T <= cfg_.max_position_embeddings, "Electra: sequence length {} exceeds max_position_embeddings {}", T,
             cfg_.max_position_embeddings);
  Tensor h = add(word_embeddings->forward(ids), position_embeddings->forward(nn::position_ids(T, 0, ids.device())));
  if (types.defined()) {
    KNOT_CHECK(types.shape() == ids.shape(), "Electra: token_type_ids {} must match input_ids {}",
               shape_str(types.shape()), shape_str(ids.shape()));
    h = add(h, token_type_embeddings->forward(types));
  } else {
    h = add(h, token_type_embeddings->weight.select(0, 0));
  }
  return dropout_->forward(embeddings_layer_norm->forward(h));
}

Tensor Electra::generator_logits(const Tensor& ids, const Tensor& types) const {
  const Tensor h = generator->forward(embed(ids, types), nn::padding_mask(ids, cfg_.pad_token_id));
  const Tensor e = gen_layer_norm->forward(gelu(gen_dense->forward(h)));
  return linear(e, word_embeddings->weight, gen_output_bias);  // tied to the shared word embeddings
}

Tensor Electra::discriminator_hidden(const Tensor& ids, const Tensor& types) const {
  return discriminator->forward(embed(ids, types), nn::padding_mask(ids, cfg_.pad_token_id));
}

Tensor Electra::discriminator_logits(const Tensor& ids, const Tensor& types) const {
  const Tensor h = discriminator_hidden(ids, types);
  return disc_prediction->forward(gelu(disc_dense->forward(h))).squeeze(-1);
}

Tensor Electra::classify(const Tensor& ids, const Tensor& types) const {
  KNOT_CHECK(cls_out != nullptr, "Electra: classify needs num_labels > 0 in the config");
  const Tensor first = discriminator_hidden(ids, types).select(1, 0);  // (B, Hd)
  return cls_out->forward(dropout_->forward(gelu(cls_dense->forward(dropout_->forward(first)))));
}

}  // namespace knot::models
