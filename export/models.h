// The models as export graphs (nn/export_graph.h): which inputs and outputs each exported part has,
// and the Transformer pieces (attention, blocks, embeddings) in standard operators. The layers'
// own graphs (Linear, every KAN basis) come from Projection::to_graph.
//
// Parts, their inputs and outputs (ids are int64; "batch", "seq", "src_seq", "tgt_seq" are dynamic):
//   fit            x (batch, in) -> y (batch, out)                                     knot fit's KAN
//   encoder        src_ids (batch, src_seq) -> memory (batch, src_seq, d)              kanformer
//   decoder        tgt_ids (batch, tgt_seq), memory (batch, src_seq, d), src_ids (batch, src_seq)
//                    -> logits (batch, tgt_seq, vocab_tgt)    (src_ids give the memory's padding)
//   seq2seq        src_ids, tgt_ids -> logits (batch, tgt_seq, vocab_tgt)
//   discriminator  input_ids, attention_mask, token_type_ids (batch, seq) -> logits (batch, seq)
//   generator      input_ids, attention_mask, token_type_ids (batch, seq) -> logits (batch, seq, vocab)
// attention_mask is 1 for a real token and 0 for padding (Hugging Face's convention); the
// Transformer parts mask padding exactly where knot does (ids equal to the padding id).
// Dropout is the identity (inference). A query row whose keys are all masked gives 0, as in knot.
#pragma once

#include <string>
#include <vector>

#include "models/electra.h"
#include "models/encoder_decoder.h"
#include "nn/export_graph.h"
#include "nn/kan.h"

namespace knot::exporting {

// fit: the KAN stack.
void kan_graph(nn::ExportGraph& g, const nn::KAN& model);

// encoder, decoder or seq2seq of the kanformer model.
void encoder_decoder_graph(nn::ExportGraph& g, const models::EncoderDecoderTransformer& model, const std::string& part);

// discriminator or generator of ELECTRA.
void electra_graph(nn::ExportGraph& g, const models::Electra& model, const std::string& part);

// ---- pieces, for models built from them ----

// mask: a bool value that broadcasts to (B, H, T, S), true = masked, or "".
std::string attention_graph(nn::ExportGraph& g, const nn::MultiHeadAttention& mha, const std::string& query,
                            const std::string& key_value, const std::string& mask, const std::string& prefix);
std::string feedforward_graph(nn::ExportGraph& g, const nn::FeedForward& ffn, const std::string& x,
                              const std::string& prefix);
// mask: the key padding mask as a bool (B, 1, 1, S), or "".
std::string encoder_block_graph(nn::ExportGraph& g, const nn::EncoderBlock& block, const std::string& x,
                                const std::string& mask, const std::string& prefix);
// self_mask: causal (and target padding) mask, memory_mask: source padding mask (bool, or "").
std::string decoder_block_graph(nn::ExportGraph& g, const nn::DecoderBlock& block, const std::string& x,
                                const std::string& memory, const std::string& self_mask,
                                const std::string& memory_mask, const std::string& prefix);
// ids == pad as bool (B, 1, 1, S); "" when pad < 0 (no padding token).
std::string padding_mask_graph(nn::ExportGraph& g, const std::string& ids, int64_t pad);
// The causal mask of x (B, T, ·) as bool (T, T): key s after query t is masked.
std::string causal_mask_graph(nn::ExportGraph& g, const std::string& x);

}  // namespace knot::exporting
