// Memory estimates from configs (see memory_estimate.h). The counts mirror the constructors in
// models/encoder_decoder.cpp, models/electra.cpp, nn/transformer.cpp, nn/attention.cpp,
// nn/feedforward.cpp, nn/linear.cpp and nn/bases/*.cpp; tests/test_memory_estimate.cpp checks them
// against built models.
#include "models/memory_estimate.h"

#include <algorithm>
#include <functional>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/error.h"
#include "core/shape.h"
#include "models/decoder_only.h"
#include "models/electra.h"
#include "models/encoder_decoder.h"
#include "nn/basis_registry.h"
#include "nn/feedforward.h"
#include "nn/kan_linear.h"
#include "nn/projection.h"

namespace knot::models {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

// Saturating arithmetic on non-negative counts; `of` records that a result passed 2^64 - 1.
struct Sat {
  bool of = false;
  uint64_t mul(uint64_t a, uint64_t b) {
    uint64_t r;
    if (__builtin_mul_overflow(a, b, &r)) {
      of = true;
      return kMax;
    }
    return r;
  }
  uint64_t add(uint64_t a, uint64_t b) {
    uint64_t r;
    if (__builtin_add_overflow(a, b, &r)) {
      of = true;
      return kMax;
    }
    return r;
  }
  // Product of sizes; a negative size counts as 0 (the model's own checks reject it).
  uint64_t prod(std::initializer_list<int64_t> xs) {
    uint64_t r = 1;
    for (int64_t x : xs) r = mul(r, x < 0 ? 0 : static_cast<uint64_t>(x));
    return r;
  }
};

// Parameter and buffer tallies of a module tree.
struct Tally : Sat {
  uint64_t params = 0, param_bytes = 0, buffer_bytes = 0;
  void param(uint64_t n, size_t item) {
    params = add(params, n);
    param_bytes = add(param_bytes, mul(n, item));
  }
  void buffer(uint64_t n, size_t item) { buffer_bytes = add(buffer_bytes, mul(n, item)); }
  void merge(const ParameterCount& c) {
    params = add(params, c.parameters);
    param_bytes = add(param_bytes, c.parameter_bytes);
    buffer_bytes = add(buffer_bytes, c.buffer_bytes);
    of = of || c.overflow;
  }
};

constexpr size_t kF32 = 4;

void linear(Tally& t, int64_t in, int64_t out, bool bias) {
  t.param(t.prod({in, out}), kF32);
  if (bias) t.param(t.prod({out}), kF32);
}

void layer_norm(Tally& t, int64_t d) { t.param(t.prod({2, d}), kF32); }

// nn::ProjectionSpec::make: "mlp" is a Linear; a KAN layer ignores the bias flag.
void projection(Tally& t, const nn::ProjectionSpec& spec, int64_t in, int64_t out, bool bias) {
  if (spec.kind == "mlp" || spec.kind == "linear") return linear(t, in, out, bias);
  t.merge(count_kan_layer(spec.kind, in, out, spec.options));
}

void attention(Tally& t, const nn::TransformerBlockConfig& b) {
  const int64_t d = b.d_model, qk = b.query_key_dim ? b.query_key_dim : d, vd = b.value_dim ? b.value_dim : d;
  projection(t, b.proj, d, qk, b.attention_qkv_bias);
  projection(t, b.proj, d, qk, b.attention_qkv_bias);
  projection(t, b.proj, d, vd, b.attention_qkv_bias);
  projection(t, b.proj, vd, d, b.attention_out_bias);
}

void feed_forward(Tally& t, const nn::TransformerBlockConfig& b) {
  Tally one;
  projection(one, b.ffn_proj, b.d_model, b.ffn_hidden_dim, b.ffn_bias_in);
  if (nn::is_gated_activation(b.ffn_activation)) projection(one, b.ffn_proj, b.d_model, b.ffn_hidden_dim, b.ffn_bias_in);
  projection(one, b.ffn_proj, b.ffn_hidden_dim, b.d_model, b.ffn_bias_out);
  // nn/moe.cpp: num_experts expert FFNs (counted by multiplication: no loop over an absurd count) and a router.
  const uint64_t copies = b.moe.enabled() ? static_cast<uint64_t>(b.moe.num_experts) : 1;
  t.params = t.add(t.params, t.mul(one.params, copies));
  t.param_bytes = t.add(t.param_bytes, t.mul(one.param_bytes, copies));
  t.buffer_bytes = t.add(t.buffer_bytes, t.mul(one.buffer_bytes, copies));
  t.of = t.of || one.of;
  if (b.moe.enabled()) linear(t, b.d_model, b.moe.num_experts, false);
}

void block(Tally& t, const nn::TransformerBlockConfig& b, bool cross) {
  attention(t, b);
  layer_norm(t, b.d_model);
  if (cross) {
    attention(t, b);
    layer_norm(t, b.d_model);
  }
  feed_forward(t, b);
  layer_norm(t, b.d_model);
}

// n identical blocks: one block's count times n (no loop over a million layers).
void blocks(Tally& t, const nn::TransformerBlockConfig& b, bool cross, int64_t n) {
  Tally one;
  block(one, b, cross);
  const uint64_t k = n < 0 ? 0 : static_cast<uint64_t>(n);
  t.params = t.add(t.params, t.mul(one.params, k));
  t.param_bytes = t.add(t.param_bytes, t.mul(one.param_bytes, k));
  t.buffer_bytes = t.add(t.buffer_bytes, t.mul(one.buffer_bytes, k));
  t.of = t.of || one.of;
}

// Activation elements per token of one block (see memory_estimate.h); t_kv: attended positions.
uint64_t block_activations(Sat& s, const nn::TransformerBlockConfig& b, int64_t t_self, int64_t t_cross) {
  const int64_t d = b.d_model, qk = b.query_key_dim ? b.query_key_dim : d, vd = b.value_dim ? b.value_dim : d;
  // A mixture of experts runs each token through top_k experts, plus the router's (N, E) tensors.
  const int64_t ffn = b.ffn_hidden_dim * (nn::is_gated_activation(b.ffn_activation) ? 4 : 3) *
                          (b.moe.enabled() ? b.moe.top_k : 1) +
                      (b.moe.enabled() ? 3 * b.moe.num_experts + 2 * d : 0);
  uint64_t n = s.add(s.prod({12, d}), s.add(s.prod({2, qk}), s.add(s.prod({2, vd}), s.prod({ffn}))));
  n = s.add(n, s.prod({2, b.num_heads, t_self}));
  if (t_cross > 0)
    n = s.add(n, s.add(s.add(s.prod({4, d}), s.prod({2, qk})), s.add(s.prod({2, vd}), s.prod({2, b.num_heads, t_cross}))));
  return n;
}

// Activation elements per token of a stack of n blocks, with or without checkpointing.
uint64_t stack_activations(Sat& s, const nn::TransformerBlockConfig& b, int64_t n, bool checkpointing, int64_t t_self,
                           int64_t t_cross) {
  if (n <= 0) return 0;
  const uint64_t one = block_activations(s, b, t_self, t_cross);
  if (!checkpointing) return s.mul(one, static_cast<uint64_t>(n));
  return s.add(s.prod({n, b.d_model}), one);
}

int64_t default_rational_groups(int64_t in) {  // nn/bases/rational.cpp
  for (int64_t g = 8; g > 1; --g)
    if (in % g == 0) return g;
  return 1;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s;
}

std::string read_first_line(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  if (f) std::getline(f, line);
  return line;
}

// A number from a cgroup file; false for "max", a missing file or garbage.
bool read_cgroup_number(const std::string& path, uint64_t* out) {
  const std::string s = read_first_line(path);
  if (s.empty() || s == "max") return false;
  try {
    size_t pos = 0;
    *out = std::stoull(s, &pos);
    return pos > 0;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

ParameterCount count_kan_layer(const std::string& basis_in, int64_t in, int64_t out, const Json& options) {
  const std::string basis = basis_in.rfind("kan_", 0) == 0 ? basis_in.substr(4) : basis_in;
  nn::basis_spec(basis);  // an unknown basis is an error naming the registered ones
  Tally t;
  Json opts = options.is_null() ? Json::object() : options;
  nn::take_init_option(opts, "kan_" + basis);  // the common "init": checked, and no parameters of its own
  nn::Options o(opts, "kan_" + basis);
  auto finish = [&](DType dt) {
    o.generator();  // the common "seed" key
    o.finish();
    return dtype_size(dt);
  };
  if (basis == "bspline") {  // nn/kan_linear.cpp
    const nn::KANLinearOptions k = nn::KANLinearOptions::from_options(o);
    const size_t b = finish(k.dtype);
    KNOT_CHECK(k.grid_size >= 1, "KANLinear: grid_size must be >= 1, got {}", k.grid_size);
    KNOT_CHECK(k.spline_order >= 0 && k.spline_order <= 8, "KANLinear: spline_order must be in 0 … 8, got {}",
               k.spline_order);
    const int64_t G = k.grid_size, K = k.spline_order;
    t.param(t.prod({out, in}), b);                                   // base_weight
    t.param(t.prod({out, in, G + K}), b);                            // spline_weight
    if (k.enable_standalone_scale_spline) t.param(t.prod({out, in}), b);  // spline_scaler
    if (k.bias) t.param(t.prod({out}), b);
    t.buffer(t.prod({in, G + 2 * K + 1}), b);                        // grid
  } else if (basis == "chebyshev" || basis == "legendre") {  // (in, out, degree + 1) coefficients
    const int degree = o.get<int>("degree", 4);
    const size_t b = finish(o.dtype());
    t.param(t.prod({in, out, int64_t{degree} + 1}), b);
  } else if (basis == "fourier") {
    const int G = o.get<int>("grid_size", 5);
    const bool bias = o.get<bool>("bias", true);
    const size_t b = finish(o.dtype());
    t.param(t.prod({2, out, in, G}), b);
    if (bias) t.param(t.prod({out}), b);
  } else if (basis == "rational") {
    const int64_t groups = o.get<int64_t>("groups", default_rational_groups(in));
    o.get<double>("init_noise", 0.0);
    const size_t b = finish(o.dtype());
    t.param(t.prod({groups, 10}), b);           // numerator (groups, 6), denominator (groups, 4)
    t.param(t.add(t.prod({in, out}), t.prod({out})), b);  // linear with bias
  } else if (basis == "rbf") {
    const int J = o.get<int>("num_grids", 8);
    const bool base = o.get<bool>("use_base_update", true), ln = o.get<bool>("use_layernorm", true);
    o.get<double>("grid_min", -2.0);
    o.get<double>("grid_max", 2.0);
    o.get<double>("spline_weight_init_scale", 0.1);
    const size_t b = finish(o.dtype());
    if (ln) t.param(t.prod({2, in}), b);
    t.buffer(t.prod({J}), b);  // rbf.grid (not trained)
    t.param(t.prod({out, in, J}), b);
    if (base) t.param(t.add(t.prod({in, out}), t.prod({out})), b);
  } else if (basis == "relu") {
    const int G = o.get<int>("grid_size", 5), k = o.get<int>("k", 3);
    const bool train_ab = o.get<bool>("train_ab", true);
    const size_t b = finish(o.dtype());
    const uint64_t phases = t.prod({2, in, int64_t{G} + k});
    if (train_ab) t.param(phases, b);
    else t.buffer(phases, b);
    t.param(t.add(t.prod({out, int64_t{G} + k, in}), t.prod({out})), b);
  } else {
    // A basis registered outside the library: count a layer of at most 16 × 16 and scale by in × out.
    const int64_t i0 = std::min<int64_t>(in, 16), o0 = std::min<int64_t>(out, 16);
    const auto layer = nn::make_kan_layer(basis, i0, o0, options);
    const uint64_t n = static_cast<uint64_t>(layer->num_parameters());
    const double scale = static_cast<double>(in) * static_cast<double>(out) / static_cast<double>(i0 * o0);
    const double p = std::ceil(static_cast<double>(n) * scale);
    const size_t b = layer->parameters().empty() ? 4 : dtype_size(layer->parameters().front().dtype());
    if (p >= 1.8e19) t.of = true;
    t.param(p >= 1.8e19 ? kMax : static_cast<uint64_t>(p), b);
  }
  return {t.params, t.param_bytes, t.buffer_bytes, t.of};
}

Json resolve_model_config(const Json& cfg, TrainingShape* shape) {
  KNOT_CHECK(cfg.is_object(), "config: expected a JSON object");
  auto int_or = [&](const char* obj, const char* key, int64_t fallback) {
    if (!cfg.contains(obj) || !cfg[obj].is_object() || !cfg[obj].contains(key) || !cfg[obj][key].is_number_integer())
      return fallback;
    return cfg[obj][key].get<int64_t>();
  };
  const std::string task = cfg.value("task", "");
  Json m = cfg.contains("model") && cfg["model"].is_object() ? cfg["model"] : cfg;
  const std::string kind = m.contains("model") && m["model"].is_string() ? m["model"].get<std::string>() : "";
  TrainingShape s;
  if (task == "translation" || (task.empty() && kind == "encoder_decoder")) {
    m["model"] = "encoder_decoder";
    const int64_t vocab = int_or("tokenizer", "vocab_size", 4000);
    if (!m.contains("vocab_src_size")) m["vocab_src_size"] = vocab;
    if (!m.contains("vocab_tgt_size")) m["vocab_tgt_size"] = vocab;
    s = {int_or("data", "batch_size", 32), int_or("data", "max_length", 32)};
    if (!m.contains("max_length") && task == "translation")  // train/translation.cpp
      m["max_length"] = std::max(s.seq_len + 1, int_or("translation", "decode_max_length", 64) + 1);
  } else if (task == "lm" || (task.empty() && kind == "decoder_only")) {
    m["model"] = "decoder_only";
    // train/language_model.cpp: the vocabulary is the tokenizer's (at most tokenizer.vocab_size,
    // whose default is the model's vocab_size, else 8000).
    if (task == "lm" && cfg.contains("tokenizer") && cfg["tokenizer"].is_object() && cfg["tokenizer"].contains("vocab_size"))
      m["vocab_size"] = int_or("tokenizer", "vocab_size", 8000);
    if (!m.contains("vocab_size")) m["vocab_size"] = 8000;
    s = {int_or("data", "batch_size", 16), int_or("data", "block_size", 128)};
  } else if (task == "electra" || task == "sentiment" || (task.empty() && kind == "electra")) {
    m["model"] = "electra";
    // A sentiment config's model is a patch over the pretraining run's (here: over the defaults, ELECTRA-Small),
    // with the task's two labels (train/finetune.cpp).
    if (task == "sentiment" && !m.contains("num_labels")) m["num_labels"] = 2;
    s = {int_or("data", "batch_size", 32), int_or("data", "max_length", 128), task == "sentiment"};
  }
  if (shape) *shape = s;
  return m;
}

uint64_t MemoryEstimate::total() const {
  Sat s;
  return s.add(s.add(s.add(parameter_bytes, buffer_bytes), s.add(gradient_bytes, optimizer_bytes)), activation_bytes);
}

std::string MemoryEstimate::summary() const {
  Sat s;
  const uint64_t tot = total();
  const std::string total_str = overflow || tot == kMax ? "more than 16.0 EiB" : bytes_str(tot);
  std::string out = fmt::format("{} (parameters {}, gradients + {} {}", total_str, bytes_str(parameter_bytes),
                                optimizer, bytes_str(s.add(gradient_bytes, optimizer_bytes)));
  if (buffer_bytes > 0) out += fmt::format(", buffers {}", bytes_str(buffer_bytes));
  out += fmt::format(", activations ~{}", bytes_str(activation_bytes));
  if (!workload.empty()) out += " at " + workload;
  out += ")";
  if (overflow) out += "; the sizes overflow 64-bit byte counts";
  return out;
}

MemoryEstimate estimate_model_memory(const Json& cfg, const TrainingShape& shape) {
  KNOT_CHECK(cfg.is_object() && cfg.contains("model") && cfg["model"].is_string(),
             "config: needs a string key 'model' (encoder_decoder, decoder_only or electra)");
  const std::string kind = cfg["model"].get<std::string>();
  MemoryEstimate e;
  e.model = kind;
  Tally t;
  Sat s;  // activation elements
  const int64_t B = shape.batch_size, T = shape.seq_len;
  uint64_t per_seq = 0;  // activation elements per sequence (or pair)
  if (kind == "encoder_decoder") {
    const EncoderDecoderConfig c = EncoderDecoderConfig::from_json(cfg);
    const nn::TransformerBlockConfig b = c.block();
    t.param(t.prod({c.vocab_src_size, c.embedding_dim}), kF32);
    blocks(t, b, false, c.num_encoder_layers);
    if (c.pre_layer_norm) layer_norm(t, c.embedding_dim);
    t.param(t.prod({c.vocab_tgt_size, c.embedding_dim}), kF32);
    blocks(t, b, true, c.num_decoder_layers);
    if (c.pre_layer_norm) layer_norm(t, c.embedding_dim);
    if (!c.tie_output_embedding) projection(t, c.output_proj, c.embedding_dim, c.vocab_tgt_size, c.use_final_linear_bias);
    else if (c.use_final_linear_bias) t.param(t.prod({c.vocab_tgt_size}), kF32);
    t.buffer(t.prod({2, c.max_length, c.embedding_dim}), kF32);  // the two sinusoidal tables
    const uint64_t enc = s.add(s.prod({3, c.embedding_dim}),
                               stack_activations(s, b, c.num_encoder_layers, c.activation_checkpointing, T, 0));
    const uint64_t dec = s.add(s.add(s.prod({3, c.embedding_dim}), s.prod({3, c.vocab_tgt_size})),
                               stack_activations(s, b, c.num_decoder_layers, c.activation_checkpointing, T, T));
    per_seq = s.mul(s.add(enc, dec), static_cast<uint64_t>(std::max<int64_t>(T, 0)));
    e.size_keys = {"model.num_encoder_layers", "model.num_decoder_layers", "model.embedding_dim",
                   "model.ffn_hidden_dim", "model.max_length", "tokenizer.vocab_size"};
    e.activation_keys = {"data.batch_size", "data.max_length"};
  } else if (kind == "decoder_only") {
    const DecoderOnlyConfig c = DecoderOnlyConfig::from_json(cfg);
    const nn::TransformerBlockConfig b = c.block();
    t.param(t.prod({c.vocab_size, c.embedding_dim}), kF32);
    if (c.positions == "learned") t.param(t.prod({c.max_length, c.embedding_dim}), kF32);
    blocks(t, b, false, c.num_layers);
    if (c.pre_layer_norm) layer_norm(t, c.embedding_dim);
    if (!c.tied()) projection(t, c.output_proj, c.embedding_dim, c.vocab_size, c.use_final_linear_bias);
    else if (c.use_final_linear_bias) t.param(t.prod({c.vocab_size}), kF32);
    if (c.positions == "sinusoidal") t.buffer(t.prod({c.max_length, c.embedding_dim}), kF32);
    const uint64_t tok = s.add(s.add(s.prod({3, c.embedding_dim}), s.prod({3, c.vocab_size})),
                               stack_activations(s, b, c.num_layers, c.activation_checkpointing, T, 0));
    per_seq = s.mul(tok, static_cast<uint64_t>(std::max<int64_t>(T, 0)));
    e.size_keys = {"model.num_layers", "model.embedding_dim", "model.ffn_hidden_dim", "model.vocab_size",
                   "tokenizer.vocab_size"};
    e.activation_keys = {"data.batch_size", "data.block_size"};
  } else if (kind == "electra") {
    const ElectraConfig c = ElectraConfig::from_json(cfg);
    const int64_t E = c.embedding_size;
    t.param(t.add(t.add(t.prod({c.vocab_size, E}), t.prod({c.max_position_embeddings, E})), t.prod({c.type_vocab_size, E})),
            kF32);
    layer_norm(t, E);
    const nn::ProjectionSpec mlp, head = c.kan_heads ? c.kan : mlp;
    auto block_cfg = [&](const ElectraEncoderSize& z) {  // models/electra.cpp, ElectraEncoder
      nn::TransformerBlockConfig b;
      b.d_model = z.hidden_size;
      b.num_heads = z.num_heads;
      b.ffn_hidden_dim = z.intermediate_size;
      b.ffn_activation = c.hidden_act;
      b.attention_out_bias = true;
      b.attention_qkv_bias = c.attention_qkv_bias;
      b.proj = c.kan_attention ? c.kan : mlp;
      b.ffn_proj = c.kan_ffn ? c.kan : mlp;
      return b;
    };
    auto encoder = [&](const ElectraEncoderSize& z) {
      if (z.hidden_size != E) linear(t, E, z.hidden_size, true);
      blocks(t, block_cfg(z), false, z.num_layers);
    };
    const ElectraEncoderSize &g = c.generator, &d = c.discriminator;
    encoder(g);
    projection(t, head, g.hidden_size, E, true);
    layer_norm(t, E);
    t.param(t.prod({c.vocab_size}), kF32);  // generator output bias
    encoder(d);
    projection(t, head, d.hidden_size, d.hidden_size, true);
    projection(t, head, d.hidden_size, 1, true);
    if (c.num_labels > 0) {
      projection(t, head, d.hidden_size, d.hidden_size, true);
      projection(t, head, d.hidden_size, c.num_labels, true);
    }
    const uint64_t disc = s.add(s.prod({3, E}), s.add(s.prod({3, d.hidden_size}),
                                                     stack_activations(s, block_cfg(d), d.num_layers,
                                                                       c.activation_checkpointing, T, 0)));
    uint64_t tok = disc;
    if (!shape.classify)
      tok = s.add(tok, s.add(s.add(s.prod({3, E}), s.prod({3, c.vocab_size})),
                             stack_activations(s, block_cfg(g), g.num_layers, c.activation_checkpointing, T, 0)));
    per_seq = s.mul(tok, static_cast<uint64_t>(std::max<int64_t>(T, 0)));
    e.size_keys = {"model.discriminator.num_layers", "model.discriminator.hidden_size", "model.generator.num_layers",
                   "model.embedding_size", "model.max_position_embeddings"};
    e.activation_keys = {"data.batch_size", "data.max_length"};
  } else {
    KNOT_FAIL("config: unknown model '{}' (known: encoder_decoder, decoder_only, electra)", kind);
  }
  e.parameters = t.params;
  e.parameter_bytes = t.param_bytes;
  e.buffer_bytes = t.buffer_bytes;
  e.gradient_bytes = t.param_bytes;
  e.optimizer_bytes = t.mul(2, t.param_bytes);
  e.optimizer = "Adam";
  e.activation_bytes = s.mul(s.mul(per_seq, static_cast<uint64_t>(std::max<int64_t>(B, 0))), kF32);
  e.workload = fmt::format("batch {} × {} tokens", B, T);
  e.overflow = t.of || s.of;
  return e;
}

MemoryEstimate estimate_kan_memory(const std::vector<int64_t>& widths, const std::string& basis, const Json& options,
                                   const FitShape& shape) {
  KNOT_CHECK(widths.size() >= 2, "KAN: widths must be [in, hidden…, out] with at least two entries, got {}",
             widths.size());
  MemoryEstimate e;
  e.model = "kan";
  Tally t;
  Sat s;
  const int64_t N = shape.rows;
  const std::string b = basis.rfind("kan_", 0) == 0 ? basis.substr(4) : basis;
  uint64_t act = 0, grid_work = 0;
  size_t item = 4;
  for (size_t i = 0; i + 1 < widths.size(); ++i) {
    const int64_t in = widths[i], out = widths[i + 1];
    KNOT_CHECK(in > 0 && out > 0, "kan_{}: sizes must be positive, got in={} out={}", b, in, out);
    const ParameterCount c = count_kan_layer(b, in, out, options);
    t.merge(c);
    if (c.parameters > 0 && c.parameter_bytes / c.parameters > 0) item = c.parameter_bytes / c.parameters;
    act = s.add(act, s.mul(s.prod({4, N}), s.add(static_cast<uint64_t>(in), static_cast<uint64_t>(out))));
    if (b == "bspline" && shape.grid_updates) {
      nn::Options o(options.is_null() ? Json::object() : options, "kan_bspline");
      const nn::KANLinearOptions k = nn::KANLinearOptions::from_options(o);
      const int64_t nb = k.grid_size + k.spline_order;
      // update_grid (nn/kan_linear.cpp): an f64 copy of the input, the per-feature refit matrices
      // and the new spline weight (counted at 8 bytes a value).
      grid_work = std::max(grid_work, s.add(s.prod({N, in}), s.mul(s.prod({in, nb}), s.add(static_cast<uint64_t>(nb),
                                                                                          static_cast<uint64_t>(out)))));
    }
  }
  e.parameters = t.params;
  e.parameter_bytes = t.param_bytes;
  e.buffer_bytes = t.buffer_bytes;
  e.gradient_bytes = t.param_bytes;
  if (shape.optimizer == "lbfgs") {
    e.optimizer = "L-BFGS";
    e.optimizer_bytes = t.mul(t.add(t.prod({2, shape.lbfgs_history}), 4), t.param_bytes);
  } else {
    e.optimizer = "Adam";
    e.optimizer_bytes = t.mul(2, t.param_bytes);
  }
  e.activation_bytes = s.add(s.mul(act, item), s.mul(grid_work, 8));
  e.workload = fmt::format("{} rows", N);
  e.size_keys = {"model.widths", "model.options.grid_size"};
  e.activation_keys = {"data.generate.n_train (or the training CSV's rows)", "train.batch_size"};
  e.overflow = t.of || s.of;
  return e;
}

AvailableMemory available_memory() {
  AvailableMemory a;
  a.bytes = kMax;
  a.source = "no limit found";
  {
    std::ifstream f("/proc/meminfo");
    std::string key;
    uint64_t kb = 0;
    std::string unit;
    while (f >> key >> kb) {
      std::getline(f, unit);
      if (key == "MemAvailable:") {
        a.bytes = kb * 1024;
        a.source = "MemAvailable in /proc/meminfo";
        break;
      }
    }
  }
  // cgroup v2: this process's group ("0::/path" in /proc/self/cgroup), else the mount's root.
  std::vector<std::pair<std::string, std::string>> files;  // (limit, usage)
  {
    std::ifstream f("/proc/self/cgroup");
    std::string line;
    while (std::getline(f, line))
      if (line.rfind("0::", 0) == 0) {
        const std::string dir = "/sys/fs/cgroup" + line.substr(3);
        files.emplace_back(dir + "/memory.max", dir + "/memory.current");
      }
  }
  files.emplace_back("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current");
  files.emplace_back("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes");
  for (const auto& [limit_file, usage_file] : files) {
    uint64_t limit = 0, used = 0;
    if (!read_cgroup_number(limit_file, &limit) || limit >= (uint64_t{1} << 60)) continue;  // v1: "no limit" is huge
    read_cgroup_number(usage_file, &used);
    const uint64_t left = limit > used ? limit - used : 0;
    if (left < a.bytes) {
      a.bytes = left;
      a.source = fmt::format("cgroup limit {} in {}, {} in use", bytes_str(limit), limit_file, bytes_str(used));
    }
    break;
  }
  return a;
}

void check_memory(const MemoryEstimate& e, const AvailableMemory& avail, const std::string& override_key) {
  const uint64_t need = e.total();
  if (!e.overflow && need <= avail.bytes) return;
  // Name first the keys of whichever part dominates.
  const bool activations_dominate = e.activation_bytes > need / 2;
  std::vector<std::string> keys = activations_dominate ? e.activation_keys : e.size_keys;
  for (const auto& k : activations_dominate ? e.size_keys : e.activation_keys) keys.push_back(k);
  KNOT_FAIL("memory check: training this {} model needs an estimated {} but {} is available ({}); lower one of {}, "
            "or set {} to proceed",
            e.model, e.summary(), bytes_str(avail.bytes), avail.source, join(keys), override_key);
}

Json with_kan_grid_size(const Json& model_cfg, int64_t grid_size) {
  Json grown = model_cfg;
  std::function<void(Json&)> grow = [&](Json& j) {
    if (j.is_object()) {
      const bool spec = j.contains("kind") && j["kind"] == "kan_bspline" &&
                        (!j.contains("options") || j["options"].is_object());
      if (spec) j["options"]["grid_size"] = grid_size;
      for (auto& [k, v] : j.items()) {
        if (k == "kind" || (spec && k == "options")) continue;  // the spec's own fields, set above
        if (v.is_string() && v == "kan_bspline")  // a spec given as a string
          v = Json{{"kind", "kan_bspline"}, {"options", {{"grid_size", grid_size}}}};
        else
          grow(v);
      }
    } else if (j.is_array()) {
      for (Json& v : j) grow(v);
    }
  };
  grow(grown);
  return grown;
}

void check_training_memory(const Json& model_cfg, const Json& train_cfg, const TrainingShape& shape) {
  bool on = true;
  if (train_cfg.is_object() && train_cfg.contains("memory_check")) {
    const Json& v = train_cfg["memory_check"];
    KNOT_CHECK(v.is_boolean(), "config 'train': key 'memory_check' must be a bool, got {}", v.dump());
    on = v.get<bool>();
  }
  if (!on) return;
  // train.kan_grid_extend grows every B-spline layer to its largest grid size during the run: the
  // estimate is of the model at that size (each B-spline projection spec, as an object or a string).
  int64_t g_max = 0;
  if (train_cfg.is_object() && train_cfg.contains("kan_grid_extend") && train_cfg["kan_grid_extend"].is_array())
    for (const Json& e : train_cfg["kan_grid_extend"])
      if (e.is_object() && e.contains("grid_size") && e["grid_size"].is_number_integer())
        g_max = std::max(g_max, e["grid_size"].get<int64_t>());
  check_memory(estimate_model_memory(g_max > 0 ? with_kan_grid_size(model_cfg, g_max) : model_cfg, shape),
               available_memory(), "train.memory_check=false");
}

}  // namespace knot::models
