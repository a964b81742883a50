// Checkpoints under the reference PyTorch projects' state_dict names, both ways (`knot export torch`,
// `knot import`; docs/export.md).
//
// hf-electra: see hf_electra_state below.
// efficient-kan: knot's KAN (`knot fit` with basis bspline) already uses efficient-kan's names
//   (layers.{i}.base_weight, spline_weight, spline_scaler, grid) and layout, so the export is the
//   model's own state_dict after checking that efficient-kan can build the same layer (SiLU base,
//   no bias); the metadata holds efficient-kan's KAN(...) arguments.
// kanformer: knot's EncoderDecoderTransformer renamed to kanformer's TransformerSeq2Seq
//   (src_emb, tgt_emb, encoder_blocks.{i}.mha.{q,k,v,ff}_proj, .norm1, .pffn.{in_proj,gates,out_proj},
//   .norm2; decoder_blocks.{i}.mha1, norm1, mha2, norm2, pffn, norm3; linear), KAN projections inside
//   kanformer's wrappers (kan_bspline -> "<proj>.kan." EfficientKANLinear, kan_chebyshev ->
//   "<proj>.chebykan." ChebyKANLayer, kan_rbf -> "<proj>.fastkan." FastKANLayer), plus kanformer's
//   buffers: "scale" = √embedding_dim and each attention's "attn.scale" = √query_key_dim. Only what
//   kanformer can express is exported: post-LN, LayerNorm eps 1e-5, 1/√query_key_dim attention scale,
//   one FFN bias flag (use_pffn_bias) and one bias flag for the attention output and final layers
//   (use_final_linear_bias); anything else is an error naming the setting.
#pragma once

#include <map>
#include <string>

#include "models/electra.h"
#include "models/encoder_decoder.h"
#include "nn/kan.h"
#include "nn/module.h"

namespace knot::exporting {

struct TorchState {
  nn::NamedTensors tensors;                     // reference names, contiguous CPU tensors
  std::map<std::string, std::string> metadata;  // safetensors __metadata__ (the reference constructor's arguments)
};

// efficient-kan's KAN(layers_hidden, grid_size, spline_order, ...) from a knot fit model.
TorchState efficient_kan_state(const nn::KAN& model);

// kanformer's TransformerSeq2Seq. kanformer ties its output Linear to tgt_emb; a knot model with
// its own output layer (tie_output_embedding false) is exported with its own "linear.weight" only
// with `untied_output` (for a kanformer whose output layer is not tied), and is an error otherwise.
TorchState kanformer_state(const models::EncoderDecoderTransformer& model, bool untied_output);

// Hugging Face transformers' ElectraForPreTraining (part "discriminator") or ElectraForMaskedLM
// (part "generator"), one file per part as the published ELECTRA checkpoints are: electra.embeddings.*,
// electra.embeddings_project, electra.encoder.layer.{i}.attention.self.{query,key,value},
// attention.output.{dense,LayerNorm}, intermediate.dense, output.{dense,LayerNorm}, then
// discriminator_predictions.{dense,dense_prediction} or generator_predictions.{dense,LayerNorm} and
// generator_lm_head (tied to the word embeddings). Hugging Face's query/key/value projections have a
// bias; a knot model without them (attention_qkv_bias false, the default) exports zeros there (the
// same function), and importing needs them zero. Only MLP models (no KAN layer, as
// Hugging Face has none) with GELU are exported; the rest is an error naming the setting.
// embeddings.position_ids is not written (a non-persistent buffer in transformers >= 4.31).
TorchState hf_electra_state(const models::Electra& model, const std::string& part);

// The reverse renamings: the reference file's tensors under knot's names for `model` (whose config
// must be the one the file was trained with; shapes are checked when the result is loaded).
// Tensors knot has no place for (kanformer's scale buffers) must hold the values knot implies.
nn::NamedTensors kanformer_to_knot(const nn::NamedTensors& state, const models::EncoderDecoderTransformer& model);
nn::NamedTensors efficient_kan_to_knot(const nn::NamedTensors& state, const nn::KAN& model);
// Both Hugging Face files (ElectraForPreTraining and ElectraForMaskedLM, in either order) -> knot's
// Electra: the shared tensors (embeddings) must be equal in both files, and the query/key/value
// biases zero (knot's projections have none).
nn::NamedTensors hf_electra_to_knot(const std::vector<nn::NamedTensors>& files, const models::Electra& model);

}  // namespace knot::exporting
