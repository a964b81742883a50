// Models: kanformer parameter counts from the configs, config errors and overrides, gradcheck of a
// tiny model, padding and causal isolation, KV-cache decoding == full decoding, save/load.
#include <algorithm>
#include <filesystem>
#include <unistd.h>

#include "models/electra.h"
#include "models/encoder_decoder.h"
#include "export/torch_names.h"
#include "models/factory.h"
#include "models/memory_estimate.h"
#include "tests/helpers.h"

using namespace knot;
using knot::test::max_abs_diff;

namespace {

std::string config_path(const std::string& name) {
  return (std::filesystem::path(__FILE__).parent_path().parent_path() / "configs" / name).string();
}

std::string tmp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("knot_models_" + std::to_string(::getpid()) + "_" + name)).string();
}

models::EncoderDecoderConfig tiny_config() {
  models::EncoderDecoderConfig c;
  c.num_encoder_layers = 2;
  c.num_decoder_layers = 2;
  c.vocab_src_size = 11;
  c.vocab_tgt_size = 9;
  c.pad_src_idx = 1;
  c.pad_tgt_idx = 1;
  c.embedding_dim = 8;
  c.query_key_dim = 4;
  c.value_dim = 6;
  c.num_heads = 2;
  c.ffn_hidden_dim = 10;
  c.ffn_activation = "relu";
  c.dropout_rate = 0.1;
  c.max_length = 32;
  return c;
}

Tensor ids(const std::vector<int64_t>& v, int64_t B) {
  return from_vector(v, {B, static_cast<int64_t>(v.size()) / B});
}

bool has_projection_kind(const std::string& kind) {
  const auto kinds = nn::projection_kinds();
  return std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
}

}  // namespace

TEST_CASE("models: kanformer configs reproduce the reference parameter counts", "[models]") {
  {
    const auto cfg = models::EncoderDecoderConfig::from_json(models::load_json_file(config_path("kanformer-mlp.json")));
    models::EncoderDecoderTransformer m(cfg);
    CHECK(m.num_parameters() == 21858816);
    CHECK(m.named_buffers().empty());  // the sinusoidal table is not in the state_dict
  }
  const auto kan_json = models::load_json_file(config_path("kanformer-kan.json"));
  if (has_projection_kind("kan_bspline")) {
    models::EncoderDecoderTransformer m(models::EncoderDecoderConfig::from_json(kan_json));
    CHECK(m.num_parameters() == 21446400);
  } else {
    WARN("kan_bspline is not a registered projection kind yet: the 21,446,400 count of kanformer-kan.json is unchecked");
    REQUIRE_THROWS_WITH(models::EncoderDecoderConfig::from_json(kan_json), Catch::Contains("kan_bspline"));
  }
}

TEST_CASE("models: parameter names follow the PyTorch convention, tied and pre-LN variants", "[models]") {
  models::EncoderDecoderTransformer m(tiny_config());
  const auto sd = m.state_dict();
  auto has = [&](const std::string& n) {
    return std::any_of(sd.begin(), sd.end(), [&](const auto& p) { return p.first == n; });
  };
  CHECK(has("encoder.embed_tokens.weight"));
  CHECK(has("encoder.layers.0.self_attn.q_proj.weight"));
  CHECK(has("encoder.layers.1.ffn.in_proj.bias"));
  CHECK(has("decoder.layers.1.encoder_attn.v_proj.weight"));
  CHECK(has("decoder.layers.0.final_layer_norm.bias"));
  CHECK(has("lm_head.weight"));
  CHECK_FALSE(has("lm_head.bias"));
  CHECK_FALSE(has("encoder.layers.0.self_attn.out_proj.bias"));
  CHECK(m.decoder->layers->at<nn::DecoderBlock>(0).self_attn->q_proj->out_features() == 4);

  auto tied_cfg = tiny_config();
  tied_cfg.tie_output_embedding = true;
  models::EncoderDecoderTransformer tied(tied_cfg);
  CHECK(tied.num_parameters() == m.num_parameters() - 9 * 8);
  auto pre_cfg = tiny_config();
  pre_cfg.pre_layer_norm = true;
  models::EncoderDecoderTransformer pre(pre_cfg);
  CHECK(pre.num_parameters() == m.num_parameters() + 2 * 2 * 8);  // encoder.layer_norm, decoder.layer_norm
}

TEST_CASE("models: encoder-decoder projections per site (MLP attention, KAN FFN), estimate and errors",
          "[models]") {
  models::Json j = tiny_config().to_json();
  j["projection"] = "mlp";
  j["projections"] = {{"ffn", {{"kind", "kan_bspline"}, {"options", {{"grid_size", 3}}}}}, {"output", "kan_chebyshev"}};
  auto m = std::dynamic_pointer_cast<models::EncoderDecoderTransformer>(models::build_model(j));
  REQUIRE(m);
  const auto sd = m->state_dict();
  auto has = [&](const std::string& n) {
    return std::any_of(sd.begin(), sd.end(), [&](const auto& p) { return p.first == n; });
  };
  CHECK(has("encoder.layers.0.self_attn.q_proj.weight"));     // MLP self-attention
  CHECK(has("decoder.layers.1.encoder_attn.v_proj.weight"));  // MLP cross-attention
  CHECK(has("encoder.layers.1.ffn.in_proj.spline_weight"));   // B-spline FFN
  CHECK(has("decoder.layers.0.ffn.out_proj.spline_weight"));
  CHECK_FALSE(has("lm_head.weight"));                         // a Chebyshev head
  CHECK(has("lm_head.cheby_coeffs"));
  // The memory estimate counts the same parameters; the resolved config round-trips with its sites.
  CHECK(models::estimate_model_memory(j, {}).parameters == static_cast<uint64_t>(m->num_parameters()));
  const auto cfg = models::EncoderDecoderConfig::from_json(j);
  CHECK_FALSE(cfg.uniform_projection());
  CHECK(models::EncoderDecoderConfig::from_json(cfg.to_json()).to_json() == cfg.to_json());
  CHECK(cfg.to_json()["projections"]["attention"]["kind"] == "mlp");
  // kanformer's layout has one projection kind for every layer: its export says so.
  REQUIRE_THROWS_WITH(exporting::kanformer_state(*m, true), Catch::Contains("one projection kind for every layer"));
  // Without "projections" every site is "projection" (today's configs), and to_json has no sites.
  models::Json plain = j;
  plain.erase("projections");
  CHECK(models::EncoderDecoderConfig::from_json(plain).uniform_projection());
  CHECK_FALSE(models::EncoderDecoderConfig::from_json(plain).to_json().contains("projections"));
  // Errors name the key.
  models::Json bad = j;
  bad["projections"] = {{"ffm", "mlp"}};
  REQUIRE_THROWS_WITH(models::build_model(bad), Catch::Contains("ffm") && Catch::Contains("did you mean 'ffn'"));
  bad["projections"] = {{"ffn", "kan_nonsense"}};
  REQUIRE_THROWS_WITH(models::build_model(bad), Catch::Contains("encoder_decoder.projections.ffn") &&
                                                    Catch::Contains("unknown projection kind"));
}

TEST_CASE("models: config errors name the key, overrides work like Hydra", "[models]") {
  models::Json j = models::load_json_file(config_path("kanformer-mlp.json"));
  models::apply_overrides(j, {"embedding_dim=64", "num_heads=4", "ffn_activation=gelu", "dropout_rate=0",
                              "projection.kind=mlp"});
  auto c = models::EncoderDecoderConfig::from_json(j);
  CHECK(c.embedding_dim == 64);
  CHECK(c.num_heads == 4);
  CHECK(c.ffn_activation == "gelu");
  CHECK(c.dropout_rate == 0.0);
  REQUIRE_THROWS_WITH(models::apply_override(j, "num_heads=four"), Catch::Contains("num_heads"));
  REQUIRE_THROWS_WITH(models::apply_override(j, "no_equals_sign"), Catch::Contains("key.sub=value"));
  // A key the file leaves out can be set (as with Hydra's structured configs, the schema -- here the
  // config's reader -- knows it); an unknown key is an error naming it when the config is read, with
  // the nearest known key as a hint; Hydra's '+' prefix is accepted.
  REQUIRE(!j.contains("activation_checkpointing"));
  models::apply_override(j, "activation_checkpointing=true");
  CHECK(models::EncoderDecoderConfig::from_json(j).activation_checkpointing);
  j.erase("activation_checkpointing");
  models::apply_override(j, "+activation_checkpointing=true");
  CHECK(models::EncoderDecoderConfig::from_json(j).activation_checkpointing);
  j.erase("activation_checkpointing");
  models::apply_override(j, "embeding_dim=3");
  REQUIRE_THROWS_WITH(models::EncoderDecoderConfig::from_json(j),
                      Catch::Contains("unknown key 'embeding_dim'") && Catch::Contains("did you mean 'embedding_dim'?"));
  j.erase("embeding_dim");
  models::apply_override(j, "+typo_key=1");
  REQUIRE_THROWS_WITH(models::EncoderDecoderConfig::from_json(j),
                      Catch::Contains("unknown key 'typo_key'") && !Catch::Contains("did you mean"));
  j.erase("typo_key");
  models::apply_override(j, "projection.options.grid_size=7");  // intermediate objects are created
  CHECK(j["projection"]["options"]["grid_size"] == 7);
  j["projection"] = {{"kind", "mlp"}};
  j["num_heads"] = "8";
  REQUIRE_THROWS_WITH(models::EncoderDecoderConfig::from_json(j),
                      Catch::Contains("'num_heads' must be an integer"));
  j["num_heads"] = 8;
  j["projection"] = {{"kind", "kan_nope"}};
  REQUIRE_THROWS_WITH(models::EncoderDecoderConfig::from_json(j), Catch::Contains("unknown projection kind 'kan_nope'"));
  j.erase("vocab_src_size");
  j["projection"] = {{"kind", "mlp"}};
  REQUIRE_THROWS_WITH(models::EncoderDecoderConfig::from_json(j), Catch::Contains("missing required key 'vocab_src_size'"));
  REQUIRE_THROWS_WITH(models::load_json_file(config_path("does-not-exist.json")), Catch::Contains("cannot open"));
  // Numbers JSON can write but a double cannot hold: errors naming the file or the override, not a
  // nlohmann exception; an integer beyond int64 is not read as a negative one.
  REQUIRE_THROWS_WITH(models::parse_json_text(R"({"lr": 1e400})", "big.json"), Catch::Contains("big.json"));
  // Nested a million levels deep, a config overflowed the stack when ConfigReader copied it.
  const std::string deep = std::string(1 << 20, '[') + std::string(1 << 20, ']');
  REQUIRE_THROWS_WITH(models::parse_json_text(R"({"x": )" + deep + "}", "deep.json"),
                      Catch::Contains("deep.json") && Catch::Contains("nested deeper"));
  REQUIRE_THROWS_WITH(models::apply_override(j, "x=" + deep), Catch::Contains("nested deeper"));
  // Overrides come from the command line, not through the JSON parser's UTF-8 check. Found by
  // fuzz_config: a key with invalid UTF-8 made the next error message (which prints the object)
  // throw nlohmann's type_error instead, and the run config could not have been saved either.
  REQUIRE_THROWS_WITH(models::apply_override(j, "projection.k\x8e\x90nd=mlp"), Catch::Contains("not valid UTF-8"));
  REQUIRE_THROWS_WITH(models::apply_override(j, "ffn_activation=g\xffl"), Catch::Contains("not valid UTF-8"));
  REQUIRE_FALSE(j["projection"].contains("k\x8e\x90nd"));
  {  // a reader's error message prints a value whatever bytes it holds
    models::Json bad = {{"flag", std::string("\xff")}};
    models::ConfigReader r(bad, "raw");
    REQUIRE_THROWS_WITH(r.get<bool>("flag", false), Catch::Contains("'flag' must be a bool"));
  }
  REQUIRE_THROWS_WITH(models::apply_override(j, "dropout_rate=1e400"), Catch::Contains("dropout_rate=1e400"));
  {
    models::Json big = models::load_json_file(config_path("kanformer-mlp.json"));  // j lacks vocab_src_size by now
    big["num_heads"] = models::Json::parse("18446744073709551615");
    REQUIRE_THROWS_WITH(models::EncoderDecoderConfig::from_json(big), Catch::Contains("'num_heads'"));
  }
  // The config round-trips through JSON.
  const auto back = models::EncoderDecoderConfig::from_json(c.to_json());
  CHECK(back.to_json() == c.to_json());
}

TEST_CASE("models: tiny encoder-decoder passes a float64 gradcheck", "[models]") {
  auto cfg = tiny_config();
  cfg.num_encoder_layers = 1;
  cfg.num_decoder_layers = 1;
  cfg.embedding_dim = 4;
  cfg.query_key_dim = 4;
  cfg.value_dim = 4;
  cfg.ffn_hidden_dim = 6;
  cfg.ffn_activation = "swiglu";
  models::EncoderDecoderTransformer m(cfg);
  m.eval();
  m.to(DType::f64);
  const Tensor src = ids({3, 4, 5, 1, 6, 7, 1, 1}, 2), tgt = ids({2, 3, 4, 5, 6, 1}, 2);
  GradcheckOptions opt;
  opt.max_full = 16;  // larger tensors: random directions, to keep the test fast
  REQUIRE_GRADCHECK([&](const std::vector<Tensor>&) { return m.forward(src, tgt); }, m.parameters(), opt);
}

TEST_CASE("models: padding tokens never change the outputs at other positions", "[models]") {
  models::EncoderDecoderTransformer m(tiny_config());
  m.eval();
  NoGradGuard ng;
  // Source rows end in padding (id 1); target row 1 too.
  const Tensor src_a = ids({3, 4, 5, 1, 1, 6, 7, 8, 9, 1}, 2), tgt_a = ids({2, 3, 4, 5, 6, 7, 1, 1}, 2);
  // A padded position is recognised by its id, so change what the pads carry instead: new
  // values in the pad id's embedding rows change every padded position's hidden state.
  const Tensor memory_a = m.encode(src_a);
  const Tensor logits_a = m.decode(tgt_a, memory_a, src_a);
  {
    NoGradGuard g2;
    m.encoder->embed_tokens->weight.select(0, 1).fill_(3.5);  // pad embeddings changed
    m.decoder->embed_tokens->weight.select(0, 1).fill_(-2.0);
  }
  const Tensor memory_b = m.encode(src_a);
  const Tensor logits_b = m.decode(tgt_a, memory_b, src_a);
  // Encoder outputs at real tokens and all decoder logits at real target tokens are bit-identical.
  const auto ma = memory_a.to_vector<float>(), mb = memory_b.to_vector<float>();
  const auto sv = src_a.to_vector<int64_t>();
  for (size_t pos = 0; pos < sv.size(); ++pos) {
    if (sv[pos] == 1) continue;
    for (int64_t j = 0; j < 8; ++j) REQUIRE(ma[pos * 8 + j] == mb[pos * 8 + j]);
  }
  const auto la = logits_a.to_vector<float>(), lb = logits_b.to_vector<float>();
  const auto tv = tgt_a.to_vector<int64_t>();
  for (size_t pos = 0; pos < tv.size(); ++pos) {
    if (tv[pos] == 1) continue;
    for (int64_t j = 0; j < 9; ++j) REQUIRE(la[pos * 9 + j] == lb[pos * 9 + j]);
  }
  // ... while the padded positions themselves did change (the edit was real).
  REQUIRE(max_abs_diff(memory_a, memory_b) > 1e-3);
}

TEST_CASE("models: a decoder position never sees a later one", "[models]") {
  models::EncoderDecoderTransformer m(tiny_config());
  m.eval();
  NoGradGuard ng;
  const Tensor src = ids({3, 4, 5, 6}, 1);
  const Tensor tgt_a = ids({2, 3, 4, 5, 6}, 1), tgt_b = ids({2, 3, 4, 8, 0}, 1);  // differ from position 3 on
  const Tensor la = m.forward(src, tgt_a), lb = m.forward(src, tgt_b);
  const auto va = la.to_vector<float>(), vb = lb.to_vector<float>();
  for (int64_t i = 0; i < 3 * 9; ++i) REQUIRE(va[i] == vb[i]);  // positions 0..2: bit-identical
  REQUIRE(max_abs_diff(la.slice(1, 3, 5), lb.slice(1, 3, 5)) > 1e-4);
}

TEST_CASE("models: incremental decoding with the KV cache equals full decoding", "[models]") {
  auto cfg = tiny_config();
  models::EncoderDecoderTransformer m(cfg);
  m.eval();
  m.to(DType::f64);
  NoGradGuard ng;
  const Tensor src = ids({3, 4, 5, 1, 6, 7, 8, 9}, 2);
  const Tensor tgt = ids({2, 3, 4, 5, 6, 2, 7, 8, 1, 1}, 2);  // row 1 ends in target padding
  const Tensor memory = m.encode(src);
  const Tensor full = m.decode(tgt, memory, src);
  models::DecoderCache cache = m.new_cache();
  int64_t t = 0;
  for (int64_t step : {1, 1, 2, 1}) {
    const Tensor logits = m.decode(tgt.slice(1, t, t + step).contiguous(), memory, src, &cache);
    REQUIRE(cache.length() == t + step);
    REQUIRE(max_abs_diff(logits, full.slice(1, t, t + step)) < 1e-10);
    t += step;
  }
}

TEST_CASE("models: save -> load gives identical outputs, mismatches are named", "[models]") {
  manual_seed(1);
  models::EncoderDecoderTransformer a(tiny_config());
  manual_seed(2);
  models::EncoderDecoderTransformer b(tiny_config());
  a.eval();
  b.eval();
  const Tensor src = ids({3, 4, 5, 1}, 1), tgt = ids({2, 3, 4}, 1);
  REQUIRE(max_abs_diff(a.forward(src, tgt), b.forward(src, tgt)) > 1e-4);
  const std::string path = tmp_path("kanformer.safetensors");
  a.save(path);
  b.load(path);
  REQUIRE(a.forward(src, tgt).to_vector<float>() == b.forward(src, tgt).to_vector<float>());
  auto other = tiny_config();
  other.embedding_dim = 6;
  other.query_key_dim = other.value_dim = 6;
  models::EncoderDecoderTransformer c(other);
  REQUIRE_THROWS_WITH(c.load(path), Catch::Contains("encoder.embed_tokens.weight"));
  std::filesystem::remove(path);
}

TEST_CASE("models: training mode applies dropout, eval mode is deterministic", "[models]") {
  models::EncoderDecoderTransformer m(tiny_config());
  const Tensor src = ids({3, 4, 5, 6}, 1), tgt = ids({2, 3, 4}, 1);
  const Tensor t1 = m.forward(src, tgt), t2 = m.forward(src, tgt);
  REQUIRE(max_abs_diff(t1, t2) > 1e-6);
  m.eval();
  REQUIRE(m.forward(src, tgt).to_vector<float>() == m.forward(src, tgt).to_vector<float>());
  // A training step reaches every parameter.
  m.train();
  const Tensor loss = cross_entropy(m.forward(src, tgt).reshape({3, 9}), ids({3, 4, 5}, 1).reshape({3}));
  loss.backward();
  for (const auto& [name, p] : m.named_parameters()) {
    INFO(name);
    REQUIRE(p.grad().defined());
  }
}

// ---- Electra ----

TEST_CASE("models: Electra tiny config builds with the expected parameters and shapes", "[models]") {
  const auto cfg = models::ElectraConfig::from_json(models::load_json_file(config_path("electra-tiny-mlp.json")));
  manual_seed(3);
  models::Electra m(cfg);
  // embeddings 560, generator 196 + head 106, discriminator 4496 + head 289, classifier 323
  CHECK(m.num_parameters() == 5970);
  const auto sd = m.state_dict();
  auto has = [&](const std::string& n) {
    return std::any_of(sd.begin(), sd.end(), [&](const auto& p) { return p.first == n; });
  };
  CHECK(has("embeddings.word_embeddings.weight"));
  CHECK(has("embeddings.LayerNorm.weight"));
  CHECK(has("generator.embeddings_project.weight"));
  CHECK(has("generator.head.output_bias"));
  CHECK(has("discriminator.layers.1.self_attn.out_proj.bias"));
  CHECK(has("discriminator.head.dense_prediction.weight"));
  CHECK(has("classifier.out_proj.bias"));
  m.eval();
  const Tensor x = ids({2, 5, 7, 9, 0, 3, 4, 0, 0, 0}, 2);
  CHECK(m.generator_logits(x).shape() == Shape{2, 5, 50});
  CHECK(m.discriminator_logits(x).shape() == Shape{2, 5});
  CHECK(m.classify(x).shape() == Shape{2, 3});
  REQUIRE_THROWS_WITH(m.generator_logits(ids(std::vector<int64_t>(17, 2), 1)), Catch::Contains("max_position"));
}

TEST_CASE("models: Electra generator and discriminator share the token embeddings", "[models]") {
  const auto cfg = models::ElectraConfig::from_json(models::load_json_file(config_path("electra-tiny-mlp.json")));
  models::Electra m(cfg);
  m.eval();
  const Tensor x = ids({2, 5, 7, 9, 3, 4}, 2);
  sum(m.generator_logits(x)).backward();
  const Tensor g_gen = m.word_embeddings->weight.grad().clone();
  REQUIRE(max_abs_diff(g_gen, zeros_like(g_gen)) > 0);
  REQUIRE_FALSE(m.discriminator->layers->at<nn::EncoderBlock>(0).self_attn->q_proj->parameters()[0].grad().defined());
  sum(m.discriminator_logits(x)).backward();  // accumulates into the same embedding table
  REQUIRE(max_abs_diff(m.word_embeddings->weight.grad(), g_gen) > 0);
  int tables = 0;
  for (const auto& [n, p] : m.named_parameters()) tables += p.is_same(m.word_embeddings->weight);
  CHECK(tables == 1);
}

TEST_CASE("models: Electra tiny passes gradcheck and ignores padding", "[models]") {
  auto j = models::load_json_file(config_path("electra-tiny-mlp.json"));
  models::apply_overrides(j, {"discriminator.num_layers=1", "discriminator.hidden_size=8", "generator.num_layers=1"});
  models::Electra m(models::ElectraConfig::from_json(j));
  m.eval();
  m.to(DType::f64);
  const Tensor x = ids({2, 5, 7, 0, 3, 4, 0, 0}, 2), types = ids({0, 0, 1, 1, 0, 1, 1, 1}, 2);
  GradcheckOptions opt;
  opt.max_full = 16;
  REQUIRE_GRADCHECK([&](const std::vector<Tensor>&) { return m.classify(x, types); }, m.parameters(), opt);
  // The pad row of the word embeddings is frozen in the lookup (PyTorch padding_idx) but trained
  // through the tied output layer, so its numeric gradient differs by design: check without pads.
  const Tensor x_full = ids({2, 5, 7, 8, 3, 4, 6, 9}, 2);
  REQUIRE_GRADCHECK([&](const std::vector<Tensor>&) { return m.generator_logits(x_full, types); }, m.parameters(), opt);
  NoGradGuard ng;
  const Tensor a = m.discriminator_logits(x, types);
  m.position_embeddings->weight.select(0, 3).fill_(5.0);  // only padded positions (3 and up) use rows >= 3
  m.position_embeddings->weight.select(0, 2).fill_(5.0);  // row 2 is used by batch 0, position 2
  const Tensor b = m.discriminator_logits(x, types);
  // Batch 1 (real tokens at 0 and 1 only) is unchanged there; batch 0 position 2 changed.
  REQUIRE(a.select(0, 1).slice(0, 0, 2).to_vector<double>() == b.select(0, 1).slice(0, 0, 2).to_vector<double>());
  REQUIRE(std::abs(a.select(0, 0).to_vector<double>()[2] - b.select(0, 0).to_vector<double>()[2]) > 1e-6);
}

TEST_CASE("models: Electra configs load, KAN placement follows the config", "[models]") {
  const auto mlp = models::ElectraConfig::from_json(models::load_json_file(config_path("electra-small-mlp.json")));
  CHECK(mlp.discriminator.hidden_size == 256);
  CHECK(mlp.generator.hidden_size == 64);
  CHECK(mlp.vocab_size == 30522);
  models::Json bad = models::load_json_file(config_path("electra-tiny-mlp.json"));
  bad["generator"]["hidden_sise"] = 3;
  REQUIRE_THROWS_WITH(models::ElectraConfig::from_json(bad), Catch::Contains("electra.generator") &&
                                                                 Catch::Contains("unknown key 'hidden_sise'"));
  const auto kan_json = models::load_json_file(config_path("electra-tiny-kan.json"));
  if (has_projection_kind("kan_bspline")) {
    models::Electra k(models::ElectraConfig::from_json(kan_json));
    const auto& blk = k.discriminator->layers->at<nn::EncoderBlock>(0);
    CHECK(blk.self_attn->q_proj->type_name() != "Linear");
    CHECK(blk.ffn->in_proj->type_name() != "Linear");
    CHECK(k.disc_dense->type_name() == "Linear");  // heads: false
    k.eval();
    CHECK(k.discriminator_logits(ids({2, 5, 7, 0}, 1)).shape() == Shape{1, 4});
    REQUIRE(models::ElectraConfig::from_json(models::load_json_file(config_path("electra-small-kan.json"))).kan_ffn);
  } else {
    WARN("kan_bspline is not a registered projection kind yet: electra-*-kan.json are unchecked");
    REQUIRE_THROWS_WITH(models::ElectraConfig::from_json(kan_json), Catch::Contains("kan_bspline"));
  }
}

TEST_CASE("models: Electra save -> load gives identical outputs", "[models]") {
  const auto cfg = models::ElectraConfig::from_json(models::load_json_file(config_path("electra-tiny-mlp.json")));
  manual_seed(4);
  models::Electra a(cfg);
  manual_seed(5);
  models::Electra b(cfg);
  a.eval();
  b.eval();
  const Tensor x = ids({2, 5, 7, 9, 0}, 1);
  REQUIRE(max_abs_diff(a.classify(x), b.classify(x)) > 0);
  const std::string path = tmp_path("electra.safetensors");
  a.save(path);
  b.load(path);
  REQUIRE(a.classify(x).to_vector<float>() == b.classify(x).to_vector<float>());
  REQUIRE(a.generator_logits(x).to_vector<float>() == b.generator_logits(x).to_vector<float>());
  std::filesystem::remove(path);
}

TEST_CASE("models: build_model dispatches on 'model' and prints a parameter table", "[models]") {
  auto m = models::build_model(models::load_json_file(config_path("electra-tiny-mlp.json")));
  CHECK(m->type_name() == "Electra");
  const std::string table = models::parameter_table(*m);
  CHECK(table.find("discriminator (ElectraEncoder)") != std::string::npos);
  CHECK(table.find("total") != std::string::npos);
  CHECK(table.find("5,970") != std::string::npos);
  REQUIRE_THROWS_WITH(models::build_model({{"model", "gpt"}}), Catch::Contains("unknown model 'gpt'"));
}
