// The models as export graphs (see models.h).
#include "export/models.h"

#include <array>
#include <cmath>
#include <limits>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "ops/ops.h"

namespace knot::exporting {

using nn::ExportGraph;

namespace {

// A scalar int64 constant (Range and Gather take scalars).
std::string int_scalar(ExportGraph& g, int64_t v) {
  return g.constant("const_int", full({}, static_cast<double>(v), DType::i64));
}

// Length of axis `axis` of x as an int64 scalar.
std::string dim_scalar(ExportGraph& g, const std::string& x, int64_t axis) {
  return g.op("Gather", {g.op("Shape", {x}), int_scalar(g, axis)}, {{"axis", int64_t{0}}});
}

// (B, L, H·D) -> (B, H, L, D)
std::string split_heads(ExportGraph& g, const std::string& x, int64_t H, int64_t D) {
  return g.transpose(g.reshape(x, {0, 0, H, D}), {0, 2, 1, 3});
}

// Rows [P, P + T) of the sinusoidal table (max_length, d), T = x's axis 1, P = `offset` (a 1-D
// int64 value, or "" for 0); added to x (B, T, d).
std::string add_sinusoidal(ExportGraph& g, const std::string& x, int64_t dim, int64_t max_length,
                           const std::string& name, const std::string& offset = "") {
  const std::string table = g.constant(name, nn::sinusoidal_positional_encoding(max_length, dim));
  const std::string start = offset.empty() ? g.ints({0}) : offset;
  const std::string end = offset.empty() ? g.dim_of(x, 1) : g.add(offset, g.dim_of(x, 1));
  return g.add(x, g.op("Slice", {table, start, end, g.ints({0})}));
}

// One residual sub-layer, post-LN: LN(x + f(x)); pre-LN: x + f(LN(x)).
template <typename F>
std::string residual(ExportGraph& g, const std::string& x, const nn::LayerNorm& ln, const std::string& ln_prefix,
                     bool pre_ln, F&& sublayer) {
  if (pre_ln) return g.add(x, sublayer(ln.to_graph(g, x, ln_prefix)));
  return ln.to_graph(g, g.add(x, sublayer(x)), ln_prefix);
}

// (heads, key size, value size) of block i's self-attention, as strings for the dims.
std::array<std::string, 3> head_dims(const nn::ModuleList& layers, size_t i) {
  const auto& a = layers.at<nn::DecoderBlock>(i).self_attn->config();
  return {std::to_string(a.num_heads), std::to_string(a.query_key_dim / a.num_heads),
          std::to_string(a.value_dim / a.num_heads)};
}

// The KV cache of every block of `layers` as graph inputs past_key_N, past_value_N
// (batch, heads, past_seq, ·).
std::vector<KVGraph> cache_inputs(ExportGraph& g, const nn::ModuleList& layers) {
  std::vector<KVGraph> kvs(layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto [H, dk, dv] = head_dims(layers, i);
    kvs[i].past_key = g.input(fmt::format("past_key_{}", i), g.dtype(), {"batch", H, "past_seq", dk});
    kvs[i].past_value = g.input(fmt::format("past_value_{}", i), g.dtype(), {"batch", H, "past_seq", dv});
  }
  return kvs;
}

// ... and the extended caches as graph outputs present_key_N, present_value_N (batch, heads, length, ·).
void cache_outputs(ExportGraph& g, const nn::ModuleList& layers, const std::vector<KVGraph>& kvs,
                   const std::string& length) {
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto [H, dk, dv] = head_dims(layers, i);
    g.output(kvs[i].present_key, fmt::format("present_key_{}", i), g.dtype(), {"batch", H, length, dk});
    g.output(kvs[i].present_value, fmt::format("present_value_{}", i), g.dtype(), {"batch", H, length, dv});
  }
}

std::string mask_or(ExportGraph& g, const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return g.op("Or", {a, b});
}

}  // namespace

std::string padding_mask_graph(ExportGraph& g, const std::string& ids, int64_t pad) {
  if (pad < 0) return "";
  const std::string eq = g.op("Equal", {ids, int_scalar(g, pad)});  // (B, S)
  return g.unsqueeze(eq, {1, 2});                                    // (B, 1, 1, S)
}

std::string causal_mask_graph(ExportGraph& g, const std::string& x, const std::string& past) {
  const std::string T = dim_scalar(g, x, 1);
  if (past.empty()) {
    const std::string pos = g.op("Range", {int_scalar(g, 0), T, int_scalar(g, 1)});  // (T)
    return g.op("Greater", {g.unsqueeze(pos, {0}), g.unsqueeze(pos, {1})});       // [t, s] = s > t
  }
  // Queries are the positions P … P+T−1 of keys 0 … P+T−1: [t, s] = s > P + t.
  const std::string total = g.add(past, T);
  const std::string q = g.op("Range", {past, total, int_scalar(g, 1)});
  const std::string k = g.op("Range", {int_scalar(g, 0), total, int_scalar(g, 1)});
  return g.op("Greater", {g.unsqueeze(k, {0}), g.unsqueeze(q, {1})});
}

std::string attention_graph(ExportGraph& g, const nn::MultiHeadAttention& mha, const std::string& query,
                            const std::string& key_value, const std::string& mask, const std::string& prefix,
                            KVGraph* kv, const RopeGraph* rope) {
  const nn::MultiHeadAttentionConfig& c = mha.config();
  KNOT_CHECK(!c.rope || rope, "export: '{}' uses rotary positions but the graph has no rotary tables (a knot bug)", prefix);
  const int64_t H = c.num_heads, dk = c.query_key_dim / H, dv = c.value_dim / H;
  std::string q = split_heads(g, mha.q_proj->to_graph(g, query, prefix + "q_proj."), H, dk);  // (B, H, T, dk)
  std::string k = split_heads(g, mha.k_proj->to_graph(g, key_value, prefix + "k_proj."), H, dk);  // (B, H, S, dk)
  std::string v = split_heads(g, mha.v_proj->to_graph(g, key_value, prefix + "v_proj."), H, dv);
  if (c.rope) {  // rotate (x1, x2) halves: (x1·cos − x2·sin, x2·cos + x1·sin), before the cache append
    auto rotate = [&](const std::string& x) {
      const std::string x1 = g.op("Slice", {x, g.ints({0}), g.ints({dk / 2}), g.ints({3})});
      const std::string x2 = g.op("Slice", {x, g.ints({dk / 2}), g.ints({dk}), g.ints({3})});
      return g.op("Concat",
                  {g.sub(g.mul(x1, rope->cos), g.mul(x2, rope->sin)), g.add(g.mul(x2, rope->cos), g.mul(x1, rope->sin))},
                  {{"axis", int64_t{3}}});
    };
    q = rotate(q);
    k = rotate(k);
  }
  if (kv) {  // the cached rows first, as knot's KVCache keeps them
    k = g.op("Concat", {kv->past_key, k}, {{"axis", int64_t{2}}});
    v = g.op("Concat", {kv->past_value, v}, {{"axis", int64_t{2}}});
    kv->present_key = k;
    kv->present_value = v;
  }
  const std::string kT = g.transpose(k, {0, 1, 3, 2});
  std::string s = g.mul(g.matmul(q, kT), g.scalar(mha.scale()));  // (B, H, T, S)
  if (!mask.empty()) s = g.op("Where", {mask, g.scalar(-1e30), s});
  std::string p = g.op("Softmax", {s}, {{"axis", int64_t{-1}}});
  // A row whose keys are all masked would be uniform over them; knot gives 0 there.
  if (!mask.empty()) p = g.op("Where", {mask, g.scalar(0.0), p});
  const std::string o = g.reshape(g.transpose(g.matmul(p, v), {0, 2, 1, 3}), {0, 0, c.value_dim});  // (B, T, v)
  return mha.out_proj->to_graph(g, o, prefix + "out_proj.");
}

std::string feedforward_graph(ExportGraph& g, const nn::FeedForward& ffn, const std::string& x,
                              const std::string& prefix) {
  const std::string act = nn::gate_activation(ffn.activation_name());
  std::string h = ffn.in_proj->to_graph(g, x, prefix + "in_proj.");
  if (ffn.gate_proj)
    h = g.mul(g.activation(act, ffn.gate_proj->to_graph(g, x, prefix + "gate_proj.")), h);
  else
    h = g.activation(act, h);
  return ffn.out_proj->to_graph(g, h, prefix + "out_proj.");
}

std::string encoder_block_graph(ExportGraph& g, const nn::EncoderBlock& b, const std::string& x,
                                const std::string& mask, const std::string& prefix) {
  const bool pre = b.pre_layer_norm();
  std::string h = residual(g, x, *b.self_attn_layer_norm, prefix + "self_attn_layer_norm.", pre,
                           [&](const std::string& y) { return attention_graph(g, *b.self_attn, y, y, mask, prefix + "self_attn."); });
  return residual(g, h, *b.final_layer_norm, prefix + "final_layer_norm.", pre,
                  [&](const std::string& y) { return feedforward_graph(g, *b.ffn, y, prefix + "ffn."); });
}

std::string decoder_block_graph(ExportGraph& g, const nn::DecoderBlock& b, const std::string& x,
                                const std::string& memory, const std::string& self_mask,
                                const std::string& memory_mask, const std::string& prefix, KVGraph* kv,
                                const RopeGraph* rope) {
  KNOT_CHECK(!b.moe, "export: the mixture-of-experts feed-forward ('{}moe') has no export yet", prefix);
  const bool pre = b.pre_layer_norm();
  std::string h = residual(g, x, *b.self_attn_layer_norm, prefix + "self_attn_layer_norm.", pre, [&](const std::string& y) {
    return attention_graph(g, *b.self_attn, y, y, self_mask, prefix + "self_attn.", kv, rope);
  });
  if (b.encoder_attn)
    h = residual(g, h, *b.encoder_attn_layer_norm, prefix + "encoder_attn_layer_norm.", pre, [&](const std::string& y) {
      return attention_graph(g, *b.encoder_attn, y, memory, memory_mask, prefix + "encoder_attn.");
    });
  return residual(g, h, *b.final_layer_norm, prefix + "final_layer_norm.", pre,
                  [&](const std::string& y) { return feedforward_graph(g, *b.ffn, y, prefix + "ffn."); });
}

void kan_graph(ExportGraph& g, const nn::KAN& model) {
  NoGradGuard ng;
  const int64_t in = model.layer(0).in_features(), out = model.layer(model.size() - 1).out_features();
  std::string h = g.input("x", g.dtype(), {"batch", std::to_string(in)});
  for (size_t i = 0; i < model.size(); ++i) h = model.layer(i).to_graph(g, h, fmt::format("layers.{}.", i));
  g.output(h, "y", g.dtype(), {"batch", std::to_string(out)});
}

void encoder_decoder_graph(ExportGraph& g, const models::EncoderDecoderTransformer& model, const std::string& part,
                           bool kv_cache) {
  KNOT_CHECK(part == "encoder" || part == "decoder" || part == "seq2seq",
             "export: a translation model exports as 'encoder', 'decoder' or 'seq2seq', not '{}'", part);
  NoGradGuard ng;
  const models::EncoderDecoderConfig& c = model.config();
  const int64_t d = c.embedding_dim;
  const double scale = std::sqrt(static_cast<double>(d));
  const std::string d_str = std::to_string(d);

  auto encode = [&](const std::string& src) {
    const auto& enc = *model.encoder;
    std::string h = g.mul(enc.embed_tokens->to_graph(g, src, "encoder.embed_tokens."), g.scalar(scale));
    h = add_sinusoidal(g, h, d, c.max_length, "encoder.positional_table");
    const std::string mask = padding_mask_graph(g, src, c.pad_src_idx);
    for (size_t i = 0; i < enc.layers->size(); ++i)
      h = encoder_block_graph(g, enc.layers->at<nn::EncoderBlock>(i), h, mask, fmt::format("encoder.layers.{}.", i));
    return enc.layer_norm ? enc.layer_norm->to_graph(g, h, "encoder.layer_norm.") : h;
  };
  // kvs: one cache per decoder layer (kv_cache), or null.
  auto decode = [&](const std::string& tgt, const std::string& memory, const std::string& src,
                    std::vector<KVGraph>* kvs) {
    const auto& dec = *model.decoder;
    std::string ids = tgt, past, past_scalar;
    if (kvs) {  // run only the new ids; the cached positions come first
      past = g.dim_of((*kvs)[0].past_key, 2);
      past_scalar = dim_scalar(g, (*kvs)[0].past_key, 2);
      ids = g.op("Slice", {tgt, past, g.ints({std::numeric_limits<int64_t>::max()}), g.ints({1})});
    }
    std::string h = g.mul(dec.embed_tokens->to_graph(g, ids, "decoder.embed_tokens."), g.scalar(scale));
    h = add_sinusoidal(g, h, d, c.max_length, "decoder.positional_table", past);
    // Target padding over the whole prefix (cached positions included), as knot's cache keeps the ids.
    const std::string self_mask =
        mask_or(g, causal_mask_graph(g, h, past_scalar), padding_mask_graph(g, tgt, c.pad_tgt_idx));
    const std::string memory_mask = padding_mask_graph(g, src, c.pad_src_idx);
    for (size_t i = 0; i < dec.layers->size(); ++i)
      h = decoder_block_graph(g, dec.layers->at<nn::DecoderBlock>(i), h, memory, self_mask, memory_mask,
                              fmt::format("decoder.layers.{}.", i), kvs ? &(*kvs)[i] : nullptr);
    if (dec.layer_norm) h = dec.layer_norm->to_graph(g, h, "decoder.layer_norm.");
    if (model.lm_head) return model.lm_head->to_graph(g, h, "lm_head.");
    // Tied: logits = h·Eᵀ (+ final_logits_bias).
    return g.linear(h, "decoder.embed_tokens.weight", dec.embed_tokens->weight, "final_logits_bias",
                    model.final_logits_bias);
  };

  const std::string V = std::to_string(c.vocab_tgt_size);
  KNOT_CHECK(!kv_cache || part == "decoder", "export: the KV cache is an option of part 'decoder', not '{}'", part);
  if (part == "encoder") {
    const std::string src = g.input("src_ids", DType::i64, {"batch", "src_seq"});
    g.output(encode(src), "memory", g.dtype(), {"batch", "src_seq", d_str});
  } else if (part == "decoder") {
    const std::string tgt = g.input("tgt_ids", DType::i64, {"batch", "tgt_seq"});
    const std::string memory = g.input("memory", g.dtype(), {"batch", "src_seq", d_str});
    const std::string src = g.input("src_ids", DType::i64, {"batch", "src_seq"});
    if (!kv_cache) {
      g.output(decode(tgt, memory, src, nullptr), "logits", g.dtype(), {"batch", "tgt_seq", V});
      return;
    }
    std::vector<KVGraph> kvs = cache_inputs(g, *model.decoder->layers);
    g.output(decode(tgt, memory, src, &kvs), "logits", g.dtype(), {"batch", "new_seq", V});
    cache_outputs(g, *model.decoder->layers, kvs, "tgt_seq");
  } else {
    const std::string src = g.input("src_ids", DType::i64, {"batch", "src_seq"});
    const std::string tgt = g.input("tgt_ids", DType::i64, {"batch", "tgt_seq"});
    g.output(decode(tgt, encode(src), src, nullptr), "logits", g.dtype(), {"batch", "tgt_seq", V});
  }
}

void decoder_only_graph(ExportGraph& g, const models::DecoderOnlyTransformer& model, bool kv_cache) {
  NoGradGuard ng;
  const models::DecoderOnlyConfig& c = model.config();
  KNOT_CHECK(!c.moe.enabled(), "export: the mixture-of-experts FFN (model.moe) has no export yet");
  const int64_t d = c.embedding_dim, L = static_cast<int64_t>(model.layers->size());
  const std::string V = std::to_string(c.vocab_size);
  const std::string ids = g.input("input_ids", DType::i64, {"batch", kv_cache ? "new_seq" : "seq"});
  std::vector<KVGraph> kvs;
  std::string past, past_scalar;
  if (kv_cache) {
    kvs = cache_inputs(g, *model.layers);
    past = g.dim_of(kvs[0].past_key, 2);
    past_scalar = dim_scalar(g, kvs[0].past_key, 2);
  }
  const std::string start = past.empty() ? g.ints({0}) : past;
  const std::string end = g.add(start, g.dim_of(ids, 1));  // positions [start, end)

  std::string h = model.embed_tokens->to_graph(g, ids, "embed_tokens.");
  if (c.scale_embedding) h = g.mul(h, g.scalar(std::sqrt(static_cast<double>(d))));
  if (c.positions == "sinusoidal") h = add_sinusoidal(g, h, d, c.max_length, "positional_table", past);
  if (c.positions == "learned")
    h = g.add(h, g.op("Slice", {g.weight("embed_positions.weight", model.embed_positions->weight), start, end, g.ints({0})}));
  RopeGraph rope;
  if (c.positions == "rope") {
    // θ_i = base^(−2i/D) per head size D; cos/sin of p·θ_i for every position p < max_length.
    const int64_t D = (c.query_key_dim > 0 ? c.query_key_dim : d) / c.num_heads, half = D / 2;
    std::vector<double> cs(static_cast<size_t>(c.max_length * half)), sn(cs.size());
    for (int64_t p = 0; p < c.max_length; ++p)
      for (int64_t i = 0; i < half; ++i) {
        const double a = static_cast<double>(p) * std::pow(c.rope_base, -2.0 * static_cast<double>(i) / static_cast<double>(D));
        cs[static_cast<size_t>(p * half + i)] = std::cos(a);
        sn[static_cast<size_t>(p * half + i)] = std::sin(a);
      }
    rope.cos = g.op("Slice", {g.constant("rope.cos", from_vector(cs, {c.max_length, half})), start, end, g.ints({0})});
    rope.sin = g.op("Slice", {g.constant("rope.sin", from_vector(sn, {c.max_length, half})), start, end, g.ints({0})});
  }
  const std::string mask = causal_mask_graph(g, h, past_scalar);
  for (int64_t i = 0; i < L; ++i)
    h = decoder_block_graph(g, model.layers->at<nn::DecoderBlock>(i), h, "", mask, "", fmt::format("layers.{}.", i),
                            kv_cache ? &kvs[i] : nullptr, c.positions == "rope" ? &rope : nullptr);
  if (model.layer_norm) h = model.layer_norm->to_graph(g, h, "layer_norm.");
  const std::string logits = model.lm_head ? model.lm_head->to_graph(g, h, "lm_head.")
                                           : g.linear(h, "embed_tokens.weight", model.embed_tokens->weight,
                                                      "final_logits_bias", model.final_logits_bias);
  g.output(logits, "logits", g.dtype(), {"batch", kv_cache ? "new_seq" : "seq", V});
  if (kv_cache) cache_outputs(g, *model.layers, kvs, "total_seq");
}

void electra_graph(ExportGraph& g, const models::Electra& model, const std::string& part) {
  KNOT_CHECK(part == "discriminator" || part == "generator" || part == "classifier",
             "export: an ELECTRA model exports as 'discriminator', 'generator' or 'classifier', not '{}'", part);
  KNOT_CHECK(part != "classifier" || model.cls_out,
             "export: part 'classifier' needs a fine-tuned model (num_labels > 0); this one has no classifier head");
  NoGradGuard ng;
  const models::ElectraConfig& c = model.config();
  const std::string ids = g.input("input_ids", DType::i64, {"batch", "seq"});
  const std::string attention_mask = g.input("attention_mask", DType::i64, {"batch", "seq"});
  const std::string types = g.input("token_type_ids", DType::i64, {"batch", "seq"});

  // LN(word(ids) + position(0 … T−1) + token_type(types))
  std::string h = model.word_embeddings->to_graph(g, ids, "embeddings.word_embeddings.");
  const std::string pos = g.op("Slice", {g.weight("embeddings.position_embeddings.weight", model.position_embeddings->weight),
                                         g.ints({0}), g.dim_of(ids, 1), g.ints({0})});
  h = g.add(g.add(h, pos), model.token_type_embeddings->to_graph(g, types, "embeddings.token_type_embeddings."));
  h = model.embeddings_layer_norm->to_graph(g, h, "embeddings.LayerNorm.");

  const bool disc = part != "generator";  // the classifier reads the discriminator's hidden states
  const models::ElectraEncoder& enc = disc ? *model.discriminator : *model.generator;
  const std::string p = disc ? "discriminator." : "generator.";
  const std::string mask = g.unsqueeze(g.op("Equal", {attention_mask, int_scalar(g, 0)}), {1, 2});  // (B, 1, 1, T)
  if (enc.embeddings_project) h = enc.embeddings_project->to_graph(g, h, p + "embeddings_project.");
  for (size_t i = 0; i < enc.layers->size(); ++i)
    h = encoder_block_graph(g, enc.layers->at<nn::EncoderBlock>(i), h, mask, fmt::format("{}layers.{}.", p, i));
  if (part == "classifier") {  // first token -> dense -> GELU -> out_proj (dropout is the identity)
    const std::string first = g.op("Gather", {h, int_scalar(g, 0)}, {{"axis", int64_t{1}}});  // (B, Hd)
    const std::string e = g.activation("gelu", model.cls_dense->to_graph(g, first, "classifier.dense."));
    g.output(model.cls_out->to_graph(g, e, "classifier.out_proj."), "logits", g.dtype(),
             {"batch", std::to_string(c.num_labels)});
  } else if (disc) {
    const std::string e = g.activation("gelu", model.disc_dense->to_graph(g, h, "discriminator.head.dense."));
    const std::string y = model.disc_prediction->to_graph(g, e, "discriminator.head.dense_prediction.");
    g.output(g.op("Squeeze", {y, g.ints({-1})}), "logits", g.dtype(), {"batch", "seq"});
  } else {
    std::string e = g.activation("gelu", model.gen_dense->to_graph(g, h, "generator.head.dense."));
    e = model.gen_layer_norm->to_graph(g, e, "generator.head.LayerNorm.");
    const std::string y = g.linear(e, "embeddings.word_embeddings.weight", model.word_embeddings->weight,
                                   "generator.head.output_bias", model.gen_output_bias);
    g.output(y, "logits", g.dtype(), {"batch", "seq", std::to_string(c.vocab_size)});
  }
}

}  // namespace knot::exporting
