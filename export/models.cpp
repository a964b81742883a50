// The models as export graphs (see models.h).
#include "export/models.h"

#include <cmath>

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

// Rows [0, T) of the sinusoidal table (max_length, d), T = x's axis 1; added to x (B, T, d).
std::string add_sinusoidal(ExportGraph& g, const std::string& x, int64_t dim, int64_t max_length,
                           const std::string& name) {
  const std::string table = g.constant(name, nn::sinusoidal_positional_encoding(max_length, dim));
  const std::string rows = g.op("Slice", {table, g.ints({0}), g.dim_of(x, 1), g.ints({0})});
  return g.add(x, rows);
}

// One residual sub-layer, post-LN: LN(x + f(x)); pre-LN: x + f(LN(x)).
template <typename F>
std::string residual(ExportGraph& g, const std::string& x, const nn::LayerNorm& ln, const std::string& ln_prefix,
                     bool pre_ln, F&& sublayer) {
  if (pre_ln) return g.add(x, sublayer(ln.to_graph(g, x, ln_prefix)));
  return ln.to_graph(g, g.add(x, sublayer(x)), ln_prefix);
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

std::string causal_mask_graph(ExportGraph& g, const std::string& x) {
  const std::string T = dim_scalar(g, x, 1);
  const std::string pos = g.op("Range", {int_scalar(g, 0), T, int_scalar(g, 1)});  // (T)
  return g.op("Greater", {g.unsqueeze(pos, {0}), g.unsqueeze(pos, {1})});       // [t, s] = s > t
}

std::string attention_graph(ExportGraph& g, const nn::MultiHeadAttention& mha, const std::string& query,
                            const std::string& key_value, const std::string& mask, const std::string& prefix) {
  const nn::MultiHeadAttentionConfig& c = mha.config();
  KNOT_CHECK(!c.rope, "export: rotary position embeddings ('{}') have no export yet", prefix);
  const int64_t H = c.num_heads, dk = c.query_key_dim / H, dv = c.value_dim / H;
  const std::string q = split_heads(g, mha.q_proj->to_graph(g, query, prefix + "q_proj."), H, dk);  // (B, H, T, dk)
  const std::string kT =
      g.transpose(g.reshape(mha.k_proj->to_graph(g, key_value, prefix + "k_proj."), {0, 0, H, dk}), {0, 2, 3, 1});
  const std::string v = split_heads(g, mha.v_proj->to_graph(g, key_value, prefix + "v_proj."), H, dv);
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
                                const std::string& memory_mask, const std::string& prefix) {
  KNOT_CHECK(!b.moe, "export: the mixture-of-experts feed-forward ('{}moe') has no export yet", prefix);
  const bool pre = b.pre_layer_norm();
  std::string h = residual(g, x, *b.self_attn_layer_norm, prefix + "self_attn_layer_norm.", pre, [&](const std::string& y) {
    return attention_graph(g, *b.self_attn, y, y, self_mask, prefix + "self_attn.");
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

void encoder_decoder_graph(ExportGraph& g, const models::EncoderDecoderTransformer& model, const std::string& part) {
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
  auto decode = [&](const std::string& tgt, const std::string& memory, const std::string& src) {
    const auto& dec = *model.decoder;
    std::string h = g.mul(dec.embed_tokens->to_graph(g, tgt, "decoder.embed_tokens."), g.scalar(scale));
    h = add_sinusoidal(g, h, d, c.max_length, "decoder.positional_table");
    const std::string self_mask = mask_or(g, causal_mask_graph(g, h), padding_mask_graph(g, tgt, c.pad_tgt_idx));
    const std::string memory_mask = padding_mask_graph(g, src, c.pad_src_idx);
    for (size_t i = 0; i < dec.layers->size(); ++i)
      h = decoder_block_graph(g, dec.layers->at<nn::DecoderBlock>(i), h, memory, self_mask, memory_mask,
                              fmt::format("decoder.layers.{}.", i));
    if (dec.layer_norm) h = dec.layer_norm->to_graph(g, h, "decoder.layer_norm.");
    if (model.lm_head) return model.lm_head->to_graph(g, h, "lm_head.");
    // Tied: logits = h·Eᵀ (+ final_logits_bias).
    return g.linear(h, "decoder.embed_tokens.weight", dec.embed_tokens->weight, "final_logits_bias",
                    model.final_logits_bias);
  };

  const std::string V = std::to_string(c.vocab_tgt_size);
  if (part == "encoder") {
    const std::string src = g.input("src_ids", DType::i64, {"batch", "src_seq"});
    g.output(encode(src), "memory", g.dtype(), {"batch", "src_seq", d_str});
  } else if (part == "decoder") {
    const std::string tgt = g.input("tgt_ids", DType::i64, {"batch", "tgt_seq"});
    const std::string memory = g.input("memory", g.dtype(), {"batch", "src_seq", d_str});
    const std::string src = g.input("src_ids", DType::i64, {"batch", "src_seq"});
    g.output(decode(tgt, memory, src), "logits", g.dtype(), {"batch", "tgt_seq", V});
  } else {
    const std::string src = g.input("src_ids", DType::i64, {"batch", "src_seq"});
    const std::string tgt = g.input("tgt_ids", DType::i64, {"batch", "tgt_seq"});
    g.output(decode(tgt, encode(src), src), "logits", g.dtype(), {"batch", "tgt_seq", V});
  }
}

void electra_graph(ExportGraph& g, const models::Electra& model, const std::string& part) {
  KNOT_CHECK(part == "discriminator" || part == "generator",
             "export: an ELECTRA model exports as 'discriminator' or 'generator', not '{}'", part);
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

  const bool disc = part == "discriminator";
  const models::ElectraEncoder& enc = disc ? *model.discriminator : *model.generator;
  const std::string p = disc ? "discriminator." : "generator.";
  const std::string mask = g.unsqueeze(g.op("Equal", {attention_mask, int_scalar(g, 0)}), {1, 2});  // (B, 1, 1, T)
  if (enc.embeddings_project) h = enc.embeddings_project->to_graph(g, h, p + "embeddings_project.");
  for (size_t i = 0; i < enc.layers->size(); ++i)
    h = encoder_block_graph(g, enc.layers->at<nn::EncoderBlock>(i), h, mask, fmt::format("{}layers.{}.", p, i));
  if (disc) {
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
