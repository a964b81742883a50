// The models as export graphs (nn/export_graph.h): which inputs and outputs each exported part has,
// and the Transformer pieces (attention, blocks, embeddings) in standard operators. The layers'
// own graphs (Linear, every KAN basis) come from Projection::to_graph.
//
// Parts, their inputs and outputs (ids are int64; "batch", "seq", "src_seq", "tgt_seq" are dynamic):
//   lm             input_ids (batch, seq) -> logits (batch, seq, vocab)            decoder-only LM
//   fit            x (batch, in) -> y (batch, out)                                     knot fit's KAN
//   encoder        src_ids (batch, src_seq) -> memory (batch, src_seq, d)              kanformer
//   decoder        tgt_ids (batch, tgt_seq), memory (batch, src_seq, d), src_ids (batch, src_seq)
//                    -> logits (batch, tgt_seq, vocab_tgt)    (src_ids give the memory's padding)
//                  optionally with the self-attention KV cache (encoder_decoder_graph below)
//   seq2seq        src_ids, tgt_ids -> logits (batch, tgt_seq, vocab_tgt)
//   discriminator  input_ids, attention_mask, token_type_ids (batch, seq) -> logits (batch, seq)
//   generator      input_ids, attention_mask, token_type_ids (batch, seq) -> logits (batch, seq, vocab)
//   classifier     input_ids, attention_mask, token_type_ids (batch, seq) -> logits (batch, num_labels)
//                  (a fine-tuned ELECTRA: the discriminator's first token through the classification head)
// attention_mask is 1 for a real token and 0 for padding (Hugging Face's convention); the
// Transformer parts mask padding exactly where knot does (ids equal to the padding id).
// Dropout is the identity (inference). A query row whose keys are all masked gives 0, as in knot.
#pragma once

#include <string>
#include <vector>

#include "models/decoder_only.h"
#include "models/electra.h"
#include "models/encoder_decoder.h"
#include "nn/export_graph.h"
#include "nn/kan.h"

namespace knot::exporting {

// fit: the KAN stack.
void kan_graph(nn::ExportGraph& g, const nn::KAN& model);

// encoder, decoder or seq2seq of the kanformer model. With kv_cache (decoder only), the decoder
// also takes every layer's cached self-attention keys and values and returns them extended:
//   inputs  tgt_ids (batch, tgt_seq): the whole target prefix, cached positions included (for the
//           padding mask), memory, src_ids, past_key_<i>, past_value_<i> (batch, heads, past_seq, ·)
//   outputs logits (batch, tgt_seq − past_seq, vocab) for the new positions,
//           present_key_<i>, present_value_<i> (batch, heads, tgt_seq, ·)
// Only the last tgt_seq − past_seq ids are embedded and run; the first step passes past_seq = 0.
void encoder_decoder_graph(nn::ExportGraph& g, const models::EncoderDecoderTransformer& model, const std::string& part,
                           bool kv_cache = false);

// lm: the decoder-only language model (task lm runs).
//   input_ids (batch, seq) -> logits (batch, seq, vocab)
// With kv_cache, input_ids are only the new tokens (batch, new_seq), after past_seq cached positions:
//   + past_key_<i>, past_value_<i> (batch, heads, past_seq, ·) -> logits (batch, new_seq, vocab),
//     present_key_<i>, present_value_<i> (batch, heads, past_seq + new_seq, ·)
// Positions (sinusoidal, learned, rotary or none) continue at past_seq. The mixture-of-experts FFN
// has no export (an error naming it).
void decoder_only_graph(nn::ExportGraph& g, const models::DecoderOnlyTransformer& model, bool kv_cache = false);

// discriminator, generator or classifier (fine-tuned runs) of ELECTRA.
void electra_graph(nn::ExportGraph& g, const models::Electra& model, const std::string& part);

// ---- pieces, for models built from them ----

// Keys and values kept between decoding steps: inputs past_* (B, H, P, ·) and outputs present_*
// (B, H, P + T, ·), the cached rows first (knot's KVCache layout).
struct KVGraph {
  std::string past_key, past_value;        // graph values to read (inputs)
  std::string present_key, present_value;  // filled in by attention_graph
};

// Rotary positions (ops rotary_embedding): the cos and sin tables of the new rows' positions,
// (T, D/2) each, for the queries and the new keys.
struct RopeGraph {
  std::string cos, sin;
};

// mask: a bool value that broadcasts to (B, H, T, S), true = masked, or "". With kv, the new keys
// and values are appended to the past ones (self-attention with a cache). rope: required when the
// attention uses rotary positions.
std::string attention_graph(nn::ExportGraph& g, const nn::MultiHeadAttention& mha, const std::string& query,
                            const std::string& key_value, const std::string& mask, const std::string& prefix,
                            KVGraph* kv = nullptr, const RopeGraph* rope = nullptr);
std::string feedforward_graph(nn::ExportGraph& g, const nn::FeedForward& ffn, const std::string& x,
                              const std::string& prefix);
// mask: the key padding mask as a bool (B, 1, 1, S), or "".
std::string encoder_block_graph(nn::ExportGraph& g, const nn::EncoderBlock& block, const std::string& x,
                                const std::string& mask, const std::string& prefix);
// self_mask: causal (and target padding) mask, memory_mask: source padding mask (bool, or "");
// kv: the self-attention cache, or null.
std::string decoder_block_graph(nn::ExportGraph& g, const nn::DecoderBlock& block, const std::string& x,
                                const std::string& memory, const std::string& self_mask,
                                const std::string& memory_mask, const std::string& prefix, KVGraph* kv = nullptr,
                                const RopeGraph* rope = nullptr);
// ids == pad as bool (B, 1, 1, S); "" when pad < 0 (no padding token).
std::string padding_mask_graph(nn::ExportGraph& g, const std::string& ids, int64_t pad);
// The causal mask of x (B, T, ·) as bool (T, P + T): key s after query t is masked, where the
// queries are positions P … P+T−1 (past: P as an int64 scalar value, or "" for P = 0).
std::string causal_mask_graph(nn::ExportGraph& g, const std::string& x, const std::string& past = "");

}  // namespace knot::exporting
