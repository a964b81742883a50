// DecoderOnlyTransformer (see decoder_only.h).
#include "models/decoder_only.h"
#include "models/transformer_config.h"

#include <cmath>

#include "autograd/checkpoint.h"
#include "autograd/grad_mode.h"
#include "nn/init.h"
#include "ops/ops.h"

namespace knot::models {
namespace {

const char* const kPositionKinds = "sinusoidal, learned, rope, none";

bool known_positions(const std::string& p) {
  return p == "sinusoidal" || p == "learned" || p == "rope" || p == "none";
}

}  // namespace

DecoderOnlyConfig DecoderOnlyConfig::from_json(const Json& j) {
  ConfigReader r(j, "decoder_only");
  const std::string model = r.get<std::string>("model", "decoder_only", "the model kind (set by the task)");
  KNOT_CHECK(model == "decoder_only", "config 'decoder_only': key 'model' is '{}', expected 'decoder_only'", model);
  DecoderOnlyConfig c;
  c.num_layers = r.get<int64_t>("num_layers", c.num_layers, "decoder blocks");
  c.vocab_size = r.require<int64_t>("vocab_size", "vocabulary size (set by the task from the tokenizer)");
  for (const char* k : {"model", "vocab_size"}) r.filled_by_task(k);
  read_transformer_keys(r, c);
  c.use_pffn_bias = r.get<bool>("use_pffn_bias", c.use_pffn_bias, "biases on the FFN's projections");
  c.scale_embedding = r.get<bool>("scale_embedding", c.scale_embedding, "multiply the token embeddings by sqrt(d) (kanformer)");
  c.embedding_init_std = r.get<double>("embedding_init_std", c.embedding_init_std, "std of the embeddings' normal initialisation (GPT-2: 0.02; PyTorch: 1)");
  c.positions = r.get<std::string>("positions", c.positions, "\"sinusoidal\", \"learned\", \"rope\" or \"none\"");
  c.rope_base = r.get<double>("rope_base", c.rope_base, "RoPE base frequency");
  const ProjectionSites sites = read_projection_sites(r);
  c.attention_proj = sites.attention;
  c.ffn_proj = sites.ffn;
  c.output_proj = sites.output;
  {  // read when absent too: its keys are declared (dense FFNs by default)
    ConfigReader m(r.get<Json>("moe", Json::object(), "a mixture of experts in every block's FFN (model.moe.*)"), "decoder_only.moe");
    c.moe.num_experts = m.get<int64_t>("num_experts", c.moe.num_experts, "experts per block (0 = a dense FFN)");
    c.moe.top_k = m.get<int64_t>("top_k", c.moe.top_k, "experts per token: 1 or 2");
    c.moe.capacity_factor = m.get<double>("capacity_factor", c.moe.capacity_factor, "tokens per expert = capacity_factor x tokens x top_k / experts (the rest are dropped)");
    c.moe.load_balance_weight = m.get<double>("load_balance_weight", c.moe.load_balance_weight, "weight of the load-balancing loss");
    c.moe.z_loss_weight = m.get<double>("z_loss_weight", c.moe.z_loss_weight, "weight of the router z-loss");
    m.finish();
    KNOT_CHECK(c.moe.num_experts >= 0 && c.moe.num_experts <= 4096,
               "config 'decoder_only.moe': key 'num_experts' must be in [0, 4096], got {}", c.moe.num_experts);
    KNOT_CHECK(c.moe.top_k == 1 || c.moe.top_k == 2, "config 'decoder_only.moe': key 'top_k' must be 1 or 2, got {}",
               c.moe.top_k);
    KNOT_CHECK(c.moe.num_experts == 0 || c.moe.top_k <= c.moe.num_experts,
               "config 'decoder_only.moe': top_k {} needs at least that many experts, got num_experts {}", c.moe.top_k,
               c.moe.num_experts);
    KNOT_CHECK(std::isfinite(c.moe.capacity_factor) && c.moe.capacity_factor > 0,
               "config 'decoder_only.moe': key 'capacity_factor' must be a finite number > 0, got {}",
               c.moe.capacity_factor);
    KNOT_CHECK(c.moe.load_balance_weight >= 0 && c.moe.z_loss_weight >= 0,
               "config 'decoder_only.moe': keys 'load_balance_weight' and 'z_loss_weight' must be >= 0");
  }
  r.finish();
  const std::pair<const char*, int64_t> positive[] = {{"vocab_size", c.vocab_size},
                                                      {"embedding_dim", c.embedding_dim},
                                                      {"num_heads", c.num_heads},
                                                      {"ffn_hidden_dim", c.ffn_hidden_dim},
                                                      {"max_length", c.max_length}};
  for (const auto& [key, v] : positive)
    KNOT_CHECK(v > 0, "config 'decoder_only': key '{}' must be positive, got {}", key, v);
  for (const auto& [key, v] : {std::pair<const char*, int64_t>{"num_layers", c.num_layers},
                               {"query_key_dim", c.query_key_dim},
                               {"value_dim", c.value_dim}})
    KNOT_CHECK(v >= 0, "config 'decoder_only': key '{}' must be >= 0, got {}", key, v);
  KNOT_CHECK(std::isfinite(c.embedding_init_std) && c.embedding_init_std > 0,
             "config 'decoder_only': key 'embedding_init_std' must be a finite number > 0, got {}", c.embedding_init_std);
  KNOT_CHECK(!(c.moe.enabled() && c.activation_checkpointing),
             "config 'decoder_only': 'moe' and 'activation_checkpointing' do not go together yet (a checkpointed "
             "block's forward runs without a graph, so the router would get no gradient from its auxiliary loss)");
  KNOT_CHECK(known_positions(c.positions), "config 'decoder_only': key 'positions' must be one of {}, got '{}'",
             kPositionKinds, c.positions);
  KNOT_CHECK(c.positions != "sinusoidal" || c.embedding_dim % 2 == 0,
             "config 'decoder_only': sinusoidal positions need an even embedding_dim, got {}", c.embedding_dim);
  KNOT_CHECK(std::isfinite(c.rope_base) && c.rope_base > 1.0,
             "config 'decoder_only': key 'rope_base' must be a finite number > 1, got {}", c.rope_base);
  KNOT_CHECK(c.attention_scale == "query_key_dim" || c.attention_scale == "head_dim",
             "config 'decoder_only': key 'attention_scale' must be 'query_key_dim' or 'head_dim', got '{}'",
             c.attention_scale);
  return c;
}

Json DecoderOnlyConfig::to_json() const {
  Json j{{"model", "decoder_only"},
         {"num_layers", num_layers},
         {"vocab_size", vocab_size},
         {"use_pffn_bias", use_pffn_bias},
         {"scale_embedding", scale_embedding},
         {"embedding_init_std", embedding_init_std},
         {"positions", positions},
         {"rope_base", rope_base},
         {"projections",
          {{"attention", attention_proj.to_json()}, {"ffn", ffn_proj.to_json()}, {"output", output_proj.to_json()}}},
         {"moe",
          {{"num_experts", moe.num_experts},
           {"top_k", moe.top_k},
           {"capacity_factor", moe.capacity_factor},
           {"load_balance_weight", moe.load_balance_weight},
           {"z_loss_weight", moe.z_loss_weight}}}};
  write_transformer_keys(*this, j);
  return j;
}

nn::TransformerBlockConfig DecoderOnlyConfig::block() const {
  nn::TransformerBlockConfig b = transformer_block(*this);
  b.ffn_bias_in = use_pffn_bias;
  b.ffn_bias_out = use_pffn_bias;
  b.rope = positions == "rope";
  b.rope_base = rope_base;
  b.moe = moe;
  return b;
}

DecoderOnlyTransformer::DecoderOnlyTransformer(const DecoderOnlyConfig& cfg)
    : cfg_(cfg), embed_scale_(cfg.scale_embedding ? std::sqrt(static_cast<double>(cfg.embedding_dim)) : 1.0) {
  embed_tokens = register_module("embed_tokens", std::make_shared<nn::Embedding>(cfg.vocab_size, cfg.embedding_dim));
  if (cfg.positions == "learned")
    embed_positions = register_module("embed_positions", std::make_shared<nn::Embedding>(cfg.max_length, cfg.embedding_dim));
  if (cfg.embedding_init_std != 1.0) {
    NoGradGuard ng;
    nn::init::normal_(embed_tokens->weight, 0.0, cfg.embedding_init_std);
    if (embed_positions) nn::init::normal_(embed_positions->weight, 0.0, cfg.embedding_init_std);
  }
  layers = register_module("layers", std::make_shared<nn::ModuleList>());
  const nn::TransformerBlockConfig bc = cfg.block();
  for (int64_t i = 0; i < cfg.num_layers; ++i) layers->push_back(std::make_shared<nn::DecoderBlock>(bc, false));
  if (cfg.pre_layer_norm)
    layer_norm = register_module("layer_norm", std::make_shared<nn::LayerNorm>(cfg.embedding_dim, cfg.layer_norm_eps));
  if (!cfg.tied()) {
    lm_head = register_module("lm_head", cfg.output_proj.make(cfg.embedding_dim, cfg.vocab_size, cfg.use_final_linear_bias));
  } else if (cfg.use_final_linear_bias) {
    final_logits_bias = register_parameter("final_logits_bias", zeros({cfg.vocab_size}));
  }
  if (cfg.positions == "sinusoidal")
    pe_ = register_module("pe", std::make_shared<nn::SinusoidalPositionalEncoding>(cfg.embedding_dim, cfg.max_length));
  dropout_ = register_module("dropout", std::make_shared<nn::Dropout>(cfg.dropout_rate));
}

DecoderOnlyCache DecoderOnlyTransformer::new_cache() const {
  DecoderOnlyCache c;
  c.layers.resize(layers->size());
  return c;
}

Tensor DecoderOnlyTransformer::hidden(const Tensor& ids, DecoderOnlyCache* cache) const {
  KNOT_CHECK(ids.dim() == 2, "DecoderOnlyTransformer: ids must be (B, T), got {}", shape_str(ids.shape()));
  const int64_t T = ids.size(1);
  const int64_t offset = cache ? cache->length : 0;
  KNOT_CHECK(offset + T <= cfg_.max_length,
             "DecoderOnlyTransformer: positions {}..{} pass the model's context of max_length = {} positions",
             offset, offset + T - 1, cfg_.max_length);
  if (cache) {
    KNOT_CHECK(cache->layers.size() == layers->size(),
               "DecoderOnlyTransformer: cache has {} layers, the model {} (use new_cache())", cache->layers.size(),
               layers->size());
  }
  Tensor h = embed_tokens->forward(ids);
  if (embed_scale_ != 1.0) h = mul(h, embed_scale_);
  if (pe_) h = pe_->forward(h, offset);
  if (embed_positions) h = add(h, embed_positions->forward(nn::position_ids(T, offset, ids.device())));
  h = dropout_->forward(h);
  const bool checkpointed = cfg_.activation_checkpointing && is_training() && !cache;
  for (size_t i = 0; i < layers->size(); ++i) {
    if (checkpointed) {
      auto block = std::dynamic_pointer_cast<nn::DecoderBlock>((*layers)[i]);
      h = checkpoint([block](const std::vector<Tensor>& in) { return block->forward(in[0], Tensor()); }, {h});
    } else {
      h = layers->at<nn::DecoderBlock>(i).forward(h, Tensor(), Tensor(), Tensor(), cache ? &cache->layers[i] : nullptr);
    }
  }
  if (cache) cache->length = offset + T;
  return layer_norm ? layer_norm->forward(h) : h;
}

Tensor DecoderOnlyTransformer::project(const Tensor& hidden) const {
  if (lm_head) return lm_head->forward(hidden);
  return linear(hidden, embed_tokens->weight, final_logits_bias);
}

Tensor DecoderOnlyTransformer::moe_aux_loss() const {
  Tensor total;
  for (size_t i = 0; i < layers->size(); ++i) {
    const auto& block = layers->at<nn::DecoderBlock>(i);
    if (!block.moe || !block.moe->aux_loss().defined()) continue;
    total = total.defined() ? add(total, block.moe->aux_loss()) : block.moe->aux_loss();
  }
  return total;
}

std::vector<nn::MoEStats> DecoderOnlyTransformer::moe_stats() const {
  std::vector<nn::MoEStats> out;
  for (size_t i = 0; i < layers->size(); ++i) {
    const auto& block = layers->at<nn::DecoderBlock>(i);
    if (block.moe) out.push_back(block.moe->stats());
  }
  return out;
}

Tensor DecoderOnlyTransformer::forward(const Tensor& ids, DecoderOnlyCache* cache) const {
  return project(hidden(ids, cache));
}

}  // namespace knot::models
