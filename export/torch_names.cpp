// Reference-project state_dict names (see torch_names.h).
#include "export/torch_names.h"

#include <fmt/format.h>

#include <cmath>
#include <map>
#include <set>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "nn/kan_linear.h"
#include "nn/linear.h"
#include "ops/ops.h"

namespace knot::exporting {

namespace {

Tensor plain(const Tensor& t) {
  NoGradGuard ng;
  return t.detach().to(Device::cpu()).contiguous();
}

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

// Checks that a B-spline layer is one efficient-kan's KANLinear computes: SiLU base branch, no
// bias (efficient-kan has neither another activation by name nor a bias). `where` names it.
void check_efficient_kan_layer(const nn::KANLinear& l, const std::string& where) {
  const nn::KANLinearOptions& o = l.options();
  KNOT_CHECK(o.base_activation == "silu" || o.base_activation == "swish",
             "export: {} has base_activation '{}'; efficient-kan's KANLinear is exported with SiLU only", where,
             o.base_activation);
  KNOT_CHECK(!o.bias, "export: {} has a bias; efficient-kan's KANLinear has none", where);
  KNOT_CHECK(o.enable_standalone_scale_spline,
             "export: {} has no spline_scaler (enable_standalone_scale_spline false); efficient-kan's default, which "
             "kanformer uses, has one",
             where);
}

// kanformer's wrapper prefix of a projection kind (model_utils.py): Linear's own names, or the
// KAN layer inside "kan." (KANEfficient), "chebykan." (KANChebyshev), "fastkan." (KANFast).
std::string kanformer_wrapper(const nn::ProjectionSpec& p) {
  if (p.kind == "mlp") return "";
  if (p.kind == "kan_bspline") {
    // KANEfficient builds EfficientKANLinear with these fixed arguments.
    const auto& o = p.options;
    const std::vector<double> unit{-1.0, 1.0};
    const bool same = o.value("grid_size", 5) == 5 && o.value("spline_order", 3) == 3 &&
                      o.value("grid_range", unit) == unit && o.value("base_activation", std::string("silu")) == "silu" &&
                      o.value("enable_standalone_scale_spline", true) && !o.value("bias", false);
    KNOT_CHECK(same,
               "export: kanformer's KANEfficient builds KANLinear(grid_size=5, spline_order=3, grid_range=[-1, 1], "
               "SiLU, standalone scaler, no bias); this model's projection options {} differ",
               o.dump());
    return "kan.";
  }
  if (p.kind == "kan_chebyshev") return "chebykan.";  // degree: kanformer's chebykan_degree argument
  if (p.kind == "kan_rbf") {
    const auto& o = p.options;
    KNOT_CHECK(o.value("grid_min", -2.0) == -2.0 && o.value("grid_max", 2.0) == 2.0 && o.value("num_grids", 8) == 8 &&
                   o.value("use_base_update", true) && o.value("use_layernorm", true),
               "export: kanformer's KANFast builds FastKANLayer(grid_min=-2, grid_max=2, num_grids=8, base update, "
               "LayerNorm); this model's projection options {} differ",
               o.dump());
    return "fastkan.";
  }
  KNOT_FAIL("export: kanformer has no '{}' projection (it has mlp, kan_bspline (efficient-kan), kan_chebyshev and "
            "kan_rbf (FastKAN))",
            p.kind);
}

// knot name -> kanformer name for every tensor of the model's state_dict.
std::map<std::string, std::string> kanformer_names(const models::EncoderDecoderTransformer& model) {
  const models::EncoderDecoderConfig& c = model.config();
  // What kanformer cannot express.
  KNOT_CHECK(c.uniform_projection(),
             "export: kanformer has one projection kind for every layer; this model sets model.projections per site "
             "(attention {}, ffn {}, output {})",
             c.attention_proj.kind, c.ffn_proj.kind, c.output_proj.kind);
  const std::string wrap = kanformer_wrapper(c.projection);
  KNOT_CHECK(!c.pre_layer_norm, "export: kanformer's blocks are post-LN; this model has pre_layer_norm true");
  KNOT_CHECK(c.layer_norm_eps == 1e-5, "export: kanformer's LayerNorms have eps 1e-5; this model has layer_norm_eps {}",
             c.layer_norm_eps);
  KNOT_CHECK(c.attention_scale == "query_key_dim",
             "export: kanformer scales attention by 1/sqrt(query_key_dim); this model has attention_scale '{}'",
             c.attention_scale);
  KNOT_CHECK(c.use_ffn_bias_1 == c.use_ffn_bias_2,
             "export: kanformer has one FFN bias flag (use_pffn_bias); this model has use_ffn_bias_1 {} and "
             "use_ffn_bias_2 {}",
             c.use_ffn_bias_1, c.use_ffn_bias_2);
  KNOT_CHECK(c.projection.kind != "mlp" || c.use_final_linear_mha_bias == c.use_final_linear_bias,
             "export: kanformer has one bias flag for the attention output and final layers (use_final_linear_bias); "
             "this model has use_final_linear_mha_bias {} and use_final_linear_bias {}",
             c.use_final_linear_mha_bias, c.use_final_linear_bias);
  KNOT_CHECK(!(c.tie_output_embedding && c.projection.kind != "mlp"),
             "export: this model ties its output layer to the target embedding, but kanformer's {} output layer is "
             "its own",
             c.projection.kind);

  auto proj = [&](const std::string& rest, const std::map<std::string, std::string>& sub) -> std::string {
    for (const auto& [from, to] : sub)
      if (starts_with(rest, from + ".")) {
        return to + "." + wrap + rest.substr(from.size() + 1);  // every entry is a projection
      }
    return "";
  };
  const std::map<std::string, std::string> attn{
      {"q_proj", "q_proj"}, {"k_proj", "k_proj"}, {"v_proj", "v_proj"}, {"out_proj", "ff_proj"}};
  const std::map<std::string, std::string> ffn{{"in_proj", "in_proj"}, {"gate_proj", "gates"}, {"out_proj", "out_proj"}};
  auto block = [&](const std::string& rest, bool decoder) -> std::string {
    const std::vector<std::pair<std::string, std::string>> parts =
        decoder ? std::vector<std::pair<std::string, std::string>>{{"self_attn_layer_norm", "norm1"},
                                                                   {"encoder_attn_layer_norm", "norm2"},
                                                                   {"final_layer_norm", "norm3"},
                                                                   {"self_attn", "mha1"},
                                                                   {"encoder_attn", "mha2"},
                                                                   {"ffn", "pffn"}}
                : std::vector<std::pair<std::string, std::string>>{
                      {"self_attn_layer_norm", "norm1"}, {"final_layer_norm", "norm2"}, {"self_attn", "mha"}, {"ffn", "pffn"}};
    for (const auto& [from, to] : parts) {
      if (!starts_with(rest, from + ".")) continue;
      const std::string tail = rest.substr(from.size() + 1);
      if (to.find("norm") != std::string::npos) return to + "." + tail;
      const std::string inner = proj(tail, to == "pffn" ? ffn : attn);
      return inner.empty() ? "" : to + "." + inner;
    }
    return "";
  };

  std::map<std::string, std::string> names;
  for (const auto& [name, t] : model.state_dict()) {
    std::string ref;
    if (name == "encoder.embed_tokens.weight") ref = "src_emb.weight";
    else if (name == "decoder.embed_tokens.weight") ref = "tgt_emb.weight";
    else if (name == "final_logits_bias") ref = "linear.bias";
    else if (starts_with(name, "lm_head.")) ref = "linear." + wrap + name.substr(8);
    else {
      for (const auto& [stack, ref_stack, dec] : {std::tuple<std::string, std::string, bool>{"encoder.layers.", "encoder_blocks.", false},
                                                  {"decoder.layers.", "decoder_blocks.", true}}) {
        if (!starts_with(name, stack)) continue;
        const std::string rest = name.substr(stack.size());
        const size_t dot = rest.find('.');
        const std::string inner = block(rest.substr(dot + 1), dec);
        if (!inner.empty()) ref = ref_stack + rest.substr(0, dot) + "." + inner;
      }
    }
    KNOT_CHECK(!ref.empty(), "export: knot tensor '{}' has no place in kanformer's TransformerSeq2Seq", name);
    names[name] = ref;
  }
  return names;
}

// kanformer's scale buffers, by name and value.
nn::NamedTensors kanformer_buffers(const models::EncoderDecoderTransformer& model) {
  const models::EncoderDecoderConfig& c = model.config();
  const int64_t qk = c.query_key_dim > 0 ? c.query_key_dim : c.embedding_dim;
  nn::NamedTensors b;
  b.emplace_back("scale", full({}, std::sqrt(static_cast<double>(c.embedding_dim))));
  const Tensor attn = full({1}, std::sqrt(static_cast<double>(qk)));
  for (int64_t i = 0; i < c.num_encoder_layers; ++i) b.emplace_back(fmt::format("encoder_blocks.{}.mha.attn.scale", i), attn);
  for (int64_t i = 0; i < c.num_decoder_layers; ++i) {
    b.emplace_back(fmt::format("decoder_blocks.{}.mha1.attn.scale", i), attn);
    b.emplace_back(fmt::format("decoder_blocks.{}.mha2.attn.scale", i), attn);
  }
  return b;
}

}  // namespace

TorchState efficient_kan_state(const nn::KAN& model) {
  TorchState s;
  const nn::KANLinearOptions* first = nullptr;
  std::vector<int64_t> widths{model.layer(0).in_features()};
  for (size_t i = 0; i < model.size(); ++i) {
    const auto* l = dynamic_cast<const nn::KANLinear*>(&model.layer(i));
    KNOT_CHECK(l, "export: efficient-kan has B-spline layers only; layer {} of this model is basis '{}'", i,
               model.layer(i).basis());
    check_efficient_kan_layer(*l, fmt::format("layers.{}", i));
    if (!first) first = &l->options();
    KNOT_CHECK(l->options().grid_size == first->grid_size && l->options().spline_order == first->spline_order,
               "export: efficient-kan's KAN uses one grid_size and spline_order for every layer; layer {} has {} and {}, "
               "layer 0 {} and {}",
               i, l->options().grid_size, l->options().spline_order, first->grid_size, first->spline_order);
    widths.push_back(l->out_features());
  }
  for (const auto& [name, t] : model.state_dict()) s.tensors.emplace_back(name, plain(t));
  s.metadata = {{"format", "pt"},
                {"efficient_kan.layers_hidden", fmt::format("[{}]", fmt::join(widths, ", "))},
                {"efficient_kan.grid_size", std::to_string(first->grid_size)},
                {"efficient_kan.spline_order", std::to_string(first->spline_order)},
                {"efficient_kan.grid_range", fmt::format("[{}, {}]", first->grid_range[0], first->grid_range[1])},
                {"knot.note", "the grid buffers hold the trained (updated) grids"}};
  return s;
}

TorchState kanformer_state(const models::EncoderDecoderTransformer& model, bool untied_output) {
  const models::EncoderDecoderConfig& c = model.config();
  KNOT_CHECK(!(c.projection.kind == "mlp" && !c.tie_output_embedding) || untied_output,
             "export: kanformer's TransformerSeq2Seq ties its Linear output layer to tgt_emb.weight, but this model "
             "has its own output layer (tie_output_embedding false), which that module cannot hold; pass "
             "--untied-output for a kanformer version whose output layer is its own");
  TorchState s;
  const auto names = kanformer_names(model);
  for (const auto& [name, t] : model.state_dict()) s.tensors.emplace_back(names.at(name), plain(t));
  if (c.projection.kind == "mlp" && c.tie_output_embedding)
    s.tensors.emplace_back("linear.weight", plain(model.decoder->embed_tokens->weight));  // the tied duplicate
  for (auto& b : kanformer_buffers(model)) s.tensors.push_back(b);
  s.metadata = {{"format", "pt"},
                {"kanformer.class", "TransformerSeq2Seq"},
                {"kanformer.model_type", c.projection.kind == "mlp"             ? "mlp"
                                         : c.projection.kind == "kan_bspline"   ? "kan_efficient"
                                         : c.projection.kind == "kan_chebyshev" ? "kan_chebyshev"
                                                                                : "kan_fast"},
                {"kanformer.num_encoder_layers", std::to_string(c.num_encoder_layers)},
                {"kanformer.num_decoder_layers", std::to_string(c.num_decoder_layers)},
                {"kanformer.vocab_src_size", std::to_string(c.vocab_src_size)},
                {"kanformer.vocab_tgt_size", std::to_string(c.vocab_tgt_size)},
                {"kanformer.pad_src_idx", std::to_string(c.pad_src_idx)},
                {"kanformer.pad_tgt_idx", std::to_string(c.pad_tgt_idx)},
                {"kanformer.embedding_dim", std::to_string(c.embedding_dim)},
                {"kanformer.query_key_dim", std::to_string(c.query_key_dim > 0 ? c.query_key_dim : c.embedding_dim)},
                {"kanformer.value_dim", std::to_string(c.value_dim > 0 ? c.value_dim : c.embedding_dim)},
                {"kanformer.num_heads", std::to_string(c.num_heads)},
                {"kanformer.ffn_hidden_dim", std::to_string(c.ffn_hidden_dim)},
                {"kanformer.ffn_activation", c.ffn_activation},
                {"kanformer.use_pffn_bias", c.use_ffn_bias_1 ? "true" : "false"},
                {"kanformer.use_final_linear_bias", c.use_final_linear_bias ? "true" : "false"},
                {"kanformer.max_length", std::to_string(c.max_length)}};
  if (c.projection.kind == "kan_chebyshev")
    s.metadata["kanformer.chebykan_degree"] = std::to_string(c.projection.options.value("degree", 4));
  return s;
}

namespace {

// One tensor of a Hugging Face ELECTRA file: its name there, knot's name ("" for a query/key/value
// bias knot does not have, which is zero) and the value in `model`.
struct HfEntry {
  std::string hf, knot;
  Tensor value;
};

std::vector<HfEntry> hf_electra_entries(const models::Electra& model, const std::string& part) {
  const models::ElectraConfig& c = model.config();
  KNOT_CHECK(part == "discriminator" || part == "generator",
             "hf-electra: the parts are 'discriminator' (ElectraForPreTraining) and 'generator' (ElectraForMaskedLM), "
             "not '{}'", part);
  KNOT_CHECK(c.kan.kind == "mlp" || !(c.kan_attention || c.kan_ffn || c.kan_heads),
             "hf-electra: Hugging Face's ELECTRA has no KAN layers; this model has {} projections", c.kan.kind);
  KNOT_CHECK(c.hidden_act == "gelu", "hf-electra: written for hidden_act gelu; this model has '{}'", c.hidden_act);
  const bool disc = part == "discriminator";
  const models::ElectraEncoder& enc = disc ? *model.discriminator : *model.generator;
  std::vector<HfEntry> e;
  auto linear = [&](const std::string& hf, const nn::Projection& p, const std::string& knot) {
    const auto* l = dynamic_cast<const nn::Linear*>(&p);
    KNOT_CHECK(l, "hf-electra: '{}' is not a Linear", knot);
    e.push_back({hf + ".weight", knot + ".weight", l->weight});
    if (l->bias.defined())
      e.push_back({hf + ".bias", knot + ".bias", l->bias});
    else  // Hugging Face's layer always has a bias: zeros compute the same function
      e.push_back({hf + ".bias", "", zeros({l->out_features()})});
  };
  auto norm = [&](const std::string& hf, const nn::LayerNorm& ln, const std::string& knot) {
    e.push_back({hf + ".weight", knot + ".weight", ln.weight});
    e.push_back({hf + ".bias", knot + ".bias", ln.bias});
  };
  e.push_back({"electra.embeddings.word_embeddings.weight", "embeddings.word_embeddings.weight", model.word_embeddings->weight});
  e.push_back({"electra.embeddings.position_embeddings.weight", "embeddings.position_embeddings.weight",
               model.position_embeddings->weight});
  e.push_back({"electra.embeddings.token_type_embeddings.weight", "embeddings.token_type_embeddings.weight",
               model.token_type_embeddings->weight});
  norm("electra.embeddings.LayerNorm", *model.embeddings_layer_norm, "embeddings.LayerNorm");
  if (enc.embeddings_project) linear("electra.embeddings_project", *enc.embeddings_project, part + ".embeddings_project");
  for (size_t i = 0; i < enc.layers->size(); ++i) {
    const auto& b = enc.layers->at<nn::EncoderBlock>(i);
    const std::string p = fmt::format("electra.encoder.layer.{}.", i), k = fmt::format("{}.layers.{}.", part, i);
    linear(p + "attention.self.query", *b.self_attn->q_proj, k + "self_attn.q_proj");
    linear(p + "attention.self.key", *b.self_attn->k_proj, k + "self_attn.k_proj");
    linear(p + "attention.self.value", *b.self_attn->v_proj, k + "self_attn.v_proj");
    linear(p + "attention.output.dense", *b.self_attn->out_proj, k + "self_attn.out_proj");
    norm(p + "attention.output.LayerNorm", *b.self_attn_layer_norm, k + "self_attn_layer_norm");
    KNOT_CHECK(!b.ffn->gate_proj, "hf-electra: Hugging Face's ELECTRA has no gated FFN");
    linear(p + "intermediate.dense", *b.ffn->in_proj, k + "ffn.in_proj");
    linear(p + "output.dense", *b.ffn->out_proj, k + "ffn.out_proj");
    norm(p + "output.LayerNorm", *b.final_layer_norm, k + "final_layer_norm");
  }
  if (disc) {
    linear("discriminator_predictions.dense", *model.disc_dense, "discriminator.head.dense");
    linear("discriminator_predictions.dense_prediction", *model.disc_prediction, "discriminator.head.dense_prediction");
  } else {
    linear("generator_predictions.dense", *model.gen_dense, "generator.head.dense");
    norm("generator_predictions.LayerNorm", *model.gen_layer_norm, "generator.head.LayerNorm");
    // ElectraForMaskedLM ties its output layer to the word embeddings.
    e.push_back({"generator_lm_head.weight", "embeddings.word_embeddings.weight", model.word_embeddings->weight});
    e.push_back({"generator_lm_head.bias", "generator.head.output_bias", model.gen_output_bias});
  }
  return e;
}

}  // namespace

TorchState hf_electra_state(const models::Electra& model, const std::string& part) {
  const models::ElectraConfig& c = model.config();
  const models::ElectraEncoderSize& size = part == "discriminator" ? c.discriminator : c.generator;
  TorchState s;
  for (const HfEntry& e : hf_electra_entries(model, part)) s.tensors.emplace_back(e.hf, plain(e.value));
  s.metadata = {{"format", "pt"},
                {"hf.architectures", part == "discriminator" ? "ElectraForPreTraining" : "ElectraForMaskedLM"},
                {"hf.vocab_size", std::to_string(c.vocab_size)},
                {"hf.embedding_size", std::to_string(c.embedding_size)},
                {"hf.hidden_size", std::to_string(size.hidden_size)},
                {"hf.num_hidden_layers", std::to_string(size.num_layers)},
                {"hf.num_attention_heads", std::to_string(size.num_heads)},
                {"hf.intermediate_size", std::to_string(size.intermediate_size)},
                {"hf.max_position_embeddings", std::to_string(c.max_position_embeddings)},
                {"hf.type_vocab_size", std::to_string(c.type_vocab_size)},
                {"hf.layer_norm_eps", fmt::format("{}", c.layer_norm_eps)},
                {"hf.pad_token_id", std::to_string(c.pad_token_id)},
                {"hf.hidden_act", c.hidden_act}};
  return s;
}

nn::NamedTensors hf_electra_to_knot(const std::vector<nn::NamedTensors>& files, const models::Electra& model) {
  // Which file is which: by its prediction head.
  const nn::NamedTensors* part_file[2] = {nullptr, nullptr};  // discriminator, generator
  for (const auto& f : files) {
    int which = -1;
    for (const auto& [n, t] : f) {
      if (starts_with(n, "discriminator_predictions.")) which = 0;
      if (starts_with(n, "generator_predictions.")) which = 1;
    }
    KNOT_CHECK(which >= 0, "import: a file holds neither discriminator_predictions.* nor generator_predictions.*; "
                           "is it an ElectraForPreTraining or ElectraForMaskedLM state?");
    KNOT_CHECK(!part_file[which], "import: two {} files were given", which == 0 ? "discriminator" : "generator");
    part_file[which] = &f;
  }
  KNOT_CHECK(part_file[0] && part_file[1],
             "import: knot's ELECTRA holds the generator and the discriminator (they share the embeddings): give both "
             "files (-i discriminator.safetensors -i generator.safetensors)");
  std::map<std::string, Tensor> out;
  std::vector<std::string> problems;
  for (int w = 0; w < 2; ++w) {
    const std::string part = w == 0 ? "discriminator" : "generator";
    std::map<std::string, Tensor> by_name(part_file[w]->begin(), part_file[w]->end());
    by_name.erase("electra.embeddings.position_ids");  // a buffer older transformers saved; not a weight
    for (const HfEntry& e : hf_electra_entries(model, part)) {
      auto it = by_name.find(e.hf);
      if (it == by_name.end()) {
        problems.push_back(fmt::format("{} file: missing '{}'", part, e.hf));
        continue;
      }
      const Tensor t = plain(it->second);
      by_name.erase(it);
      if (e.knot.empty()) {  // a bias knot does not have: usable only when it is zero
        if (t.numel() > 0 && max(abs(t.to(DType::f64))).item() != 0.0)
          problems.push_back(fmt::format("{} file: '{}' is not zero, and this model's projection has no bias (set "
                                         "model.attention_qkv_bias true in the config)", part, e.hf));
        continue;
      }
      auto [slot, fresh] = out.emplace(e.knot, t);
      if (!fresh && (slot->second.shape() != t.shape() ||
                     max(abs(sub(slot->second.to(DType::f64), t.to(DType::f64)))).item() != 0.0))
        problems.push_back(fmt::format("'{}' differs between the files ('{}' of the {} file); knot's ELECTRA shares it",
                                       e.knot, e.hf, part));
    }
    for (const auto& [n, t] : by_name) problems.push_back(fmt::format("{} file: unexpected '{}'", part, n));
  }
  KNOT_CHECK(problems.empty(), "import: the Hugging Face ELECTRA files do not fit this model's config: {}",
             fmt::join(problems, "; "));
  return nn::NamedTensors(out.begin(), out.end());
}

nn::NamedTensors kanformer_to_knot(const nn::NamedTensors& state, const models::EncoderDecoderTransformer& model) {
  const auto names = kanformer_names(model);
  std::map<std::string, Tensor> by_name;
  for (const auto& [n, t] : state) {
    KNOT_CHECK(by_name.emplace(n, t).second, "import: tensor '{}' appears twice", n);
  }
  std::vector<std::string> problems;
  std::set<std::string> used;
  nn::NamedTensors out;
  for (const auto& [knot_name, ref] : names) {
    auto it = by_name.find(ref);
    if (it == by_name.end()) {
      problems.push_back(fmt::format("missing '{}' (knot's '{}')", ref, knot_name));
      continue;
    }
    used.insert(ref);
    out.emplace_back(knot_name, it->second);
  }
  // kanformer's buffers carry no weights, but must say what knot assumes.
  for (const auto& [n, v] : kanformer_buffers(model)) {
    auto it = by_name.find(n);
    if (it == by_name.end()) continue;  // a state without buffers is fine
    used.insert(n);
    if (it->second.numel() != 1 || std::abs(it->second.item() - v.item()) > 1e-4 * v.item())
      problems.push_back(fmt::format("'{}' is {}, but the config implies {}", n, it->second.str(), v.item()));
  }
  // A tied MLP model's state holds the output weight twice, as linear.weight and tgt_emb.weight:
  // the copies must agree, or the file is not of a tied model.
  const models::EncoderDecoderConfig& c = model.config();
  if (c.projection.kind == "mlp" && c.tie_output_embedding) {
    auto lin = by_name.find("linear.weight"), emb = by_name.find("tgt_emb.weight");
    if (lin != by_name.end() && emb != by_name.end()) {
      used.insert("linear.weight");
      if (lin->second.shape() != emb->second.shape() ||
          max(abs(sub(lin->second.to(DType::f64), emb->second.to(DType::f64)))).item() != 0.0)
        problems.push_back("'linear.weight' differs from 'tgt_emb.weight', but this model ties them "
                           "(tie_output_embedding true)");
    }
  }
  for (const auto& [n, t] : by_name)
    if (!used.count(n)) problems.push_back(fmt::format("unexpected '{}'", n));
  KNOT_CHECK(problems.empty(), "import: the kanformer state does not fit this model's config: {}",
             fmt::join(problems, "; "));
  return out;
}

nn::NamedTensors efficient_kan_to_knot(const nn::NamedTensors& state, const nn::KAN& model) {
  for (size_t i = 0; i < model.size(); ++i) {
    const auto* l = dynamic_cast<const nn::KANLinear*>(&model.layer(i));
    KNOT_CHECK(l, "import: efficient-kan's KAN has B-spline layers; the config's basis is '{}'", model.layer(i).basis());
    check_efficient_kan_layer(*l, fmt::format("layers.{}", i));
  }
  return state;  // the same names and layout; load_state_dict checks names, shapes and grids
}

}  // namespace knot::exporting
