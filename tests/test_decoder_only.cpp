// Decoder-only language models (issue 19): kanformer's GPT-2 preset parameter counts, the causal
// mask, rotary positions (gradcheck, the relative-position property, cached == full decoding),
// pre-LN / learned positions / tying / per-site projections, gradcheck of a tiny model, and the `lm`
// task end to end (data errors naming file and line, training, resume, eval, generation).
#include <filesystem>
#include <fstream>

#include "data/bpe.h"
#include "models/decoder_only.h"
#include "models/factory.h"
#include "models/memory_estimate.h"
#include "ops/nn_functional.h"
#include "tests/helpers.h"
#include "tests/train_helpers.h"
#include "train/checkpoint.h"
#include "train/language_model.h"

using namespace knot;
using knot::test::fresh_run_dir;
using knot::test::max_abs_diff;
using knot::test::rand_leaf;
using knot::test::train_fixture;

namespace {

std::string config_path(const std::string& name) {
  return (std::filesystem::path(__FILE__).parent_path().parent_path() / "configs" / name).string();
}

models::DecoderOnlyConfig tiny_lm(const std::string& positions = "sinusoidal") {
  models::DecoderOnlyConfig c;
  c.num_layers = 2;
  c.vocab_size = 13;
  c.embedding_dim = 8;
  c.num_heads = 2;
  c.ffn_hidden_dim = 12;
  c.ffn_activation = "gelu";
  c.dropout_rate = 0.1;
  c.max_length = 16;
  c.positions = positions;
  return c;
}

Tensor ids(const std::vector<int64_t>& v, int64_t B) { return from_vector(v, {B, static_cast<int64_t>(v.size()) / B}); }

// The model part of a preset config, as knot params reads it.
models::Json preset_model(const std::string& file, const std::string& projection = "mlp") {
  models::Json m = models::resolve_model_config(models::load_json_file(config_path(file)), nullptr);
  m["projection"] = {{"kind", projection}};
  return m;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

models::Json tiny_lm_task(int64_t steps) {
  return models::Json{{"task", "lm"},
                      {"seed", 5},
                      {"data", {{"train", train_fixture("electra-text.txt")}, {"val_fraction", 0.1}, {"block_size", 16},
                                {"batch_size", 8}}},
                      {"tokenizer", {{"vocab_size", 120}}},
                      {"model", {{"num_layers", 1}, {"embedding_dim", 16}, {"num_heads", 2}, {"ffn_hidden_dim", 32},
                                 {"max_length", 32}, {"positions", "rope"}, {"pre_layer_norm", true}}},
                      {"train", {{"steps", steps}, {"lr", 3e-3}, {"log_every", 1}, {"val_every", 10},
                                 {"checkpoint_every", 10}, {"threads", 1}, {"progress", false}}}};
}

train::TrainerHooks quiet() { return knot::test::quiet_hooks(); }

}  // namespace

TEST_CASE("decoder_only: kanformer's GPT-2 preset has the parameter counts its README states", "[models][lm]") {
  // kanformer README: GPT2 with max_length 1024 has 123,674,449 parameters with ModelType.MLP and
  // 656,294,400 with KAN_CHEBYSHEV (degree 4). The counts come from the memory estimate (which
  // allocates nothing); the smallest presets are built to tie that count to the real model.
  CHECK(models::estimate_model_memory(preset_model("gpt2.json"), {}).parameters == 123674449);
  CHECK(models::estimate_model_memory(preset_model("gpt2.json", "kan_chebyshev"), {}).parameters == 656294400);
  for (const std::string proj : {"mlp", "kan_chebyshev", "kan_bspline"}) {
    const models::Json m = preset_model("gpt2-nano.json", proj);
    auto built = models::build_model(m);
    CAPTURE(proj);
    CHECK(static_cast<uint64_t>(built->num_parameters()) == models::estimate_model_memory(m, {}).parameters);
  }
  // Tied with an MLP head (kanformer: self.linear.weight = self.emb.weight), untied with a KAN head.
  auto nano = std::dynamic_pointer_cast<models::DecoderOnlyTransformer>(models::build_model(preset_model("gpt2-nano.json")));
  REQUIRE(nano);
  CHECK_FALSE(nano->lm_head);
  CHECK(nano->final_logits_bias.defined());
  CHECK(nano->num_parameters() == 2546977);
}

TEST_CASE("decoder_only: a future token never changes an earlier output", "[models][lm]") {
  for (const std::string pos : {"sinusoidal", "learned", "rope", "none"}) {
    for (const bool pre_ln : {false, true}) {
      CAPTURE(pos, pre_ln);
      auto c = tiny_lm(pos);
      c.pre_layer_norm = pre_ln;
      models::DecoderOnlyTransformer m(c);
      m.eval();
      NoGradGuard ng;
      const Tensor a = m.forward(ids({3, 4, 5, 6, 7, 8}, 1)), b = m.forward(ids({3, 4, 5, 9, 0, 2}, 1));
      const auto va = a.to_vector<float>(), vb = b.to_vector<float>();
      for (int64_t i = 0; i < 3 * 13; ++i) REQUIRE(va[i] == vb[i]);  // positions 0..2 bit-identical
      REQUIRE(max_abs_diff(a.slice(1, 3, 6), b.slice(1, 3, 6)) > 1e-4);
    }
  }
}

TEST_CASE("rotary_embedding: reference values, gradcheck, and scores that depend only on the offset", "[ops][lm]") {
  // By hand: D = 4, position 3, base 100: θ = (1, 0.1); the pairs (x0, x2) and (x1, x3) rotate.
  const Tensor x = from_vector(std::vector<double>{1, 2, 3, 4}, {1, 4});
  const auto y = rotary_embedding(x, 3, 100.0).to_vector<double>();
  const double a0 = 3.0, a1 = 0.3;
  CHECK(y[0] == Approx(1 * std::cos(a0) - 3 * std::sin(a0)).margin(1e-12));
  CHECK(y[1] == Approx(2 * std::cos(a1) - 4 * std::sin(a1)).margin(1e-12));
  CHECK(y[2] == Approx(3 * std::cos(a0) + 1 * std::sin(a0)).margin(1e-12));
  CHECK(y[3] == Approx(4 * std::cos(a1) + 2 * std::sin(a1)).margin(1e-12));

  Tensor q = rand_leaf({2, 3, 5, 6}, 71);
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return rotary_embedding(in[0], 2, 500.0); }, {q});
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return rotary_embedding(in[0].transpose(2, 3), 0); },
                    {rand_leaf({1, 2, 6, 4}, 72)});  // strided input

  // q at p and k at s: q'·k' is the same for (p, s) and (p + c, s + c).
  const Tensor qv = rand_leaf({1, 8}, 73).detach(), kv = rand_leaf({1, 8}, 74).detach();
  auto score = [&](int64_t p, int64_t s) {
    return sum(mul(rotary_embedding(qv, p), rotary_embedding(kv, s))).item();
  };
  for (int64_t c : {1, 7, 100}) {
    CHECK(score(5, 2) == Approx(score(5 + c, 2 + c)).margin(1e-10));
    CHECK(score(0, 9) == Approx(score(c, 9 + c)).margin(1e-10));
  }
  CHECK(std::abs(score(5, 2) - score(5, 3)) > 1e-6);  // ... but it does depend on the offset
  REQUIRE_THROWS_WITH(rotary_embedding(rand_leaf({2, 5}, 75), 0), Catch::Contains("even"));
}

TEST_CASE("decoder_only: cached incremental decoding equals full recomputation", "[models][lm]") {
  for (const std::string pos : {"sinusoidal", "learned", "rope", "none"}) {
    CAPTURE(pos);
    auto c = tiny_lm(pos);
    c.pre_layer_norm = pos == "rope";
    models::DecoderOnlyTransformer m(c);
    m.eval();
    m.to(DType::f64);
    NoGradGuard ng;
    const Tensor seq = ids({3, 4, 5, 6, 7, 8, 9, 10, 2, 1, 11, 12}, 2);
    const Tensor full = m.forward(seq);
    models::DecoderOnlyCache cache = m.new_cache();
    int64_t t = 0;
    for (int64_t step : {2, 1, 1, 2}) {
      const Tensor logits = m.forward(seq.slice(1, t, t + step).contiguous(), &cache);
      REQUIRE(cache.length == t + step);
      REQUIRE(max_abs_diff(logits, full.slice(1, t, t + step)) < 1e-10);
      t += step;
    }
    // The context ends at max_length, with an error naming it.
    models::DecoderOnlyCache c2 = m.new_cache();
    REQUIRE_THROWS_WITH(m.forward(from_vector(std::vector<int64_t>(17, 3), {1, 17}), &c2), Catch::Contains("max_length"));
  }
}

TEST_CASE("decoder_only: tiny models pass a float64 gradcheck (rope + pre-LN + swiglu, and a KAN FFN)", "[models][lm]") {
  auto c = tiny_lm("rope");
  c.embedding_dim = 4;
  c.ffn_hidden_dim = 6;
  c.num_layers = 1;
  c.pre_layer_norm = true;
  c.ffn_activation = "swiglu";
  c.use_final_linear_bias = true;
  models::DecoderOnlyTransformer m(c);
  m.eval();
  m.to(DType::f64);
  GradcheckOptions opt;
  opt.max_full = 16;
  const Tensor x = ids({3, 4, 5, 6, 7, 8}, 2);
  REQUIRE_GRADCHECK([&](const std::vector<Tensor>&) { return m.forward(x); }, m.parameters(), opt);

  auto k = tiny_lm("learned");
  k.embedding_dim = 4;
  k.ffn_hidden_dim = 5;
  k.num_layers = 1;
  k.ffn_proj.kind = "kan_chebyshev";
  models::DecoderOnlyTransformer mk(k);
  mk.eval();
  mk.to(DType::f64);
  REQUIRE_GRADCHECK([&](const std::vector<Tensor>&) { return mk.forward(x); }, mk.parameters(), opt);
}

TEST_CASE("decoder_only: config keys, per-site projections, names and errors", "[models][lm]") {
  models::Json j{{"model", "decoder_only"}, {"vocab_size", 20}, {"num_layers", 1}, {"embedding_dim", 8},
                 {"num_heads", 2}, {"ffn_hidden_dim", 16}, {"projection", "kan_bspline"},
                 {"projections", {{"attention", "mlp"}}}};
  auto m = std::dynamic_pointer_cast<models::DecoderOnlyTransformer>(models::build_model(j));
  REQUIRE(m);
  const auto names = m->named_parameters();
  auto has = [&](const std::string& n) {
    for (const auto& [k, v] : names)
      if (k == n) return true;
    return false;
  };
  CHECK(has("layers.0.self_attn.q_proj.weight"));          // MLP attention
  CHECK(has("layers.0.ffn.in_proj.spline_weight"));         // B-spline FFN
  CHECK(has("lm_head.spline_weight"));                      // a KAN head: not tied
  CHECK_FALSE(has("embed_positions.weight"));               // sinusoidal: not a parameter
  // The resolved config round-trips.
  const auto cfg = models::DecoderOnlyConfig::from_json(j);
  CHECK(models::DecoderOnlyConfig::from_json(cfg.to_json()).to_json() == cfg.to_json());
  // Errors name the key.
  auto bad = j;
  bad["positions"] = "alibi";
  REQUIRE_THROWS_WITH(models::build_model(bad), Catch::Contains("positions") && Catch::Contains("rope"));
  bad = j;
  bad["projections"] = {{"ffm", "mlp"}};
  REQUIRE_THROWS_WITH(models::build_model(bad), Catch::Contains("ffm") && Catch::Contains("did you mean 'ffn'"));
  bad = j;
  bad["num_heads"] = 3;
  bad["positions"] = "rope";
  bad["embedding_dim"] = 9;
  REQUIRE_THROWS_WITH(models::build_model(bad), Catch::Contains("num_heads"));
  bad = j;
  bad["embedding_dim"] = 12;
  bad["num_heads"] = 4;
  bad["positions"] = "rope";  // head size 3: odd
  REQUIRE_THROWS_WITH(models::build_model(bad), Catch::Contains("even head size"));
}

TEST_CASE("lm: data errors name the file and line", "[train][lm]") {
  const std::string dir = fresh_run_dir("lm", "data");
  std::filesystem::create_directories(dir);
  write_text(dir + "/bad.jsonl", "{\"text\": \"one\"}\n{\"text\": \"two\"\n");
  REQUIRE_THROWS_WITH(train::read_lm_documents(dir + "/bad.jsonl", "auto", "text"), Catch::Contains("bad.jsonl:2"));
  write_text(dir + "/nokey.jsonl", "{\"text\": \"one\"}\n{\"body\": \"two\"}\n");
  REQUIRE_THROWS_WITH(train::read_lm_documents(dir + "/nokey.jsonl", "auto", "text"),
                      Catch::Contains("nokey.jsonl") && Catch::Contains("record 2") && Catch::Contains("'text'"));
  write_text(dir + "/bad.txt", "fine\nalso fine\nbroken \xC3\x28 here\n");
  REQUIRE_THROWS_WITH(train::read_lm_documents(dir + "/bad.txt", "auto", "text"),
                      Catch::Contains("bad.txt:3") && Catch::Contains("UTF-8"));
  // JSONL with another key, and plain text: empty lines are skipped.
  write_text(dir + "/ok.jsonl", "{\"body\": \"one two\"}\n\n{\"body\": \"three\"}\n");
  CHECK(train::read_lm_documents(dir + "/ok.jsonl", "auto", "body") == std::vector<std::string>{"one two", "three"});
  write_text(dir + "/ok.txt", "a b\n\nc\r\n");
  CHECK(train::read_lm_documents(dir + "/ok.txt", "text", "text") == std::vector<std::string>{"a b", "c"});
  REQUIRE_THROWS_WITH(train::read_lm_documents(dir + "/missing.txt", "auto", "text"), Catch::Contains("does not exist"));
  // Packing: every document ends with the separator; blocks of L + 1 start every L ids.
  CHECK(train::lm_block_count(33, 16) == 2);
  CHECK(train::lm_block_count(32, 16) == 1);
  CHECK(train::lm_block_count(16, 16) == 0);
  std::filesystem::remove_all(dir);
}

TEST_CASE("lm: a tiny run learns, resumes bit-identically, evaluates and generates", "[train][lm]") {
  const std::string a = fresh_run_dir("lm", "a"), b = fresh_run_dir("lm", "b");
  const auto r = train::train_language_model(tiny_lm_task(20), a, false, quiet());
  REQUIRE(r.steps == 20);
  REQUIRE(r.has_loss);
  const auto metrics = knot::test::read_metrics(a);
  double first = -1, last = -1;
  for (const auto& m : metrics)
    if (m.contains("loss")) (first < 0 ? first : last) = m["loss"].get<double>();
  CHECK(last < first - 0.5);  // it learns
  // Interrupted at step 10 and resumed: the same weights as the uninterrupted run.
  train::TrainerHooks stop = quiet();
  stop.stop_after_steps = 10;
  train::train_language_model(tiny_lm_task(20), b, false, stop);
  train::train_language_model(tiny_lm_task(20), b, true, quiet());
  const train::LmRun ra = train::load_lm_run(a), rb = train::load_lm_run(b);
  const auto pa = ra.model->named_parameters(), pb = rb.model->named_parameters();
  REQUIRE(pa.size() == pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    CAPTURE(pa[i].first);
    REQUIRE(pa[i].first == pb[i].first);
    REQUIRE(max_abs_diff(pa[i].second, pb[i].second) == 0.0);
  }
  // The validation loss equals lm_stream_loss over the held-out documents.
  const auto dc = train::LmDataConfig::from_json(ra.config["data"]);
  const auto docs = train::read_lm_data(dc);
  const auto stream = train::pack_token_stream(docs.val, *ra.tokenizer, train::document_separator(*ra.tokenizer));
  const train::LmLoss l = train::lm_stream_loss(*ra.model, stream, dc.block_size, 8);
  CHECK(l.loss == Approx(r.last_validation["val_loss"].get<double>()).epsilon(1e-6));
  CHECK(l.perplexity == Approx(std::exp(l.loss)));
  // Generation: greedy with the cache == without; a seed gives the same sample; the context ends it.
  train::GenerateOptions g;
  g.greedy = true;
  g.max_new_tokens = 20;
  const auto prompt = train::lm_prompt_ids(*ra.tokenizer, "A blue bird");
  const auto with = train::generate_ids(*ra.model, prompt, g);
  g.use_cache = false;
  const auto without = train::generate_ids(*ra.model, prompt, g);
  CHECK(with.ids == without.ids);
  CHECK(with.ids.size() == 20);
  train::GenerateOptions s;
  s.sample.temperature = 0.9;
  s.sample.top_p = 0.9;
  s.seed = 4;
  s.max_new_tokens = 40;
  CHECK(train::generate_ids(*ra.model, prompt, s).ids == train::generate_ids(*ra.model, prompt, s).ids);
  const auto full = train::generate_ids(*ra.model, prompt, s);
  CHECK(full.context_full);                          // 4 prompt tokens + 28 new = max_length 32
  CHECK(full.prompt_tokens + static_cast<int64_t>(full.ids.size()) == 32);
  s.stop_id = train::document_separator(*ra.tokenizer);
  const auto stopped = train::generate_ids(*ra.model, prompt, s);
  for (int64_t id : stopped.ids) CHECK(id != s.stop_id);
  s.sample.top_k = -1;
  REQUIRE_THROWS_WITH(train::generate_ids(*ra.model, prompt, s), Catch::Contains("top_k"));
  std::filesystem::remove_all(a);
  std::filesystem::remove_all(b);
}

TEST_CASE("lm: a bad model key is an error before the tokenizer is trained, a fresh run needs an empty directory", "[train][lm]") {
  const std::string a = fresh_run_dir("lm", "keys");
  auto cfg = tiny_lm_task(2);
  cfg["model"]["positons"] = "rope";
  std::vector<std::string> logs;
  train::TrainerHooks h;
  h.log = [&](const std::string& s) { logs.push_back(s); };
  REQUIRE_THROWS_WITH(train::train_language_model(cfg, a, false, h), Catch::Contains("positons"));
  CHECK(logs.empty());  // no BPE was trained
  CHECK_FALSE(std::filesystem::exists(a));
  cfg = tiny_lm_task(2);
  cfg["data"]["block_size"] = 100000;
  cfg["model"]["max_length"] = 100000;
  REQUIRE_THROWS_WITH(train::train_language_model(cfg, a, false, quiet()), Catch::Contains("fewer than one block"));
  CHECK_FALSE(std::filesystem::exists(a));
}

TEST_CASE("index_scatter_add: the adjoint of index_select, values and gradcheck", "[ops][lm]") {
  const Tensor src = from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {3, 2});
  const Tensor idx = from_vector(std::vector<int64_t>{2, 0, 2});
  const auto out = index_scatter_add(src, 0, idx, 4).to_vector<double>();
  CHECK(out == std::vector<double>{3, 4, 0, 0, 6, 8, 0, 0});  // rows 0 and 2 of src both go to row 2
  Tensor s = rand_leaf({3, 2}, 81);
  REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return index_scatter_add(in[0], 0, idx, 4); }, {s});
  REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return index_scatter_add(in[0], 1, from_vector(std::vector<int64_t>{1, 1}), 3); },
                    {rand_leaf({3, 2}, 82)});
  REQUIRE_THROWS_WITH(index_scatter_add(src, 0, from_vector(std::vector<int64_t>{0, 9, 1}), 4), Catch::Contains("9"));
  REQUIRE_THROWS_WITH(index_scatter_add(src, 0, from_vector(std::vector<int64_t>{0, 1}), 4), Catch::Contains("one entry per slice"));
}

namespace {

nn::MoEConfig moe_cfg(int64_t E, int64_t k, double cf = 8.0) {
  nn::MoEConfig c;
  c.num_experts = E;
  c.top_k = k;
  c.capacity_factor = cf;
  return c;
}

}  // namespace

TEST_CASE("moe: one expert with k = 1 equals the dense FFN", "[models][lm]") {
  manual_seed(3);
  nn::MoEFeedForward moe(6, 10, "gelu", 0.1, {}, true, true, moe_cfg(1, 1, 1.0));
  nn::FeedForward dense(6, 10, "gelu", 0.1, {}, true, true);
  const auto src = moe.experts->at<nn::FeedForward>(0).named_parameters(), dst = dense.named_parameters();
  REQUIRE(src.size() == dst.size());
  {
    NoGradGuard ng;
    for (size_t i = 0; i < src.size(); ++i) dst[i].second.copy_(src[i].second);
  }
  moe.eval();
  dense.eval();
  const Tensor x = rand_leaf({2, 5, 6}, 91).detach().to(DType::f32);
  REQUIRE(max_abs_diff(moe.forward(x), dense.forward(x)) == 0.0);
  CHECK(moe.stats().load == std::vector<int64_t>{10});
  CHECK(moe.stats().dropped == 0);
  CHECK(moe.stats().balance == Approx(1.0));  // one expert: f = P = 1
}

TEST_CASE("moe: the load-balancing and z-losses match a hand computation", "[models][lm]") {
  nn::MoEFeedForward moe(2, 3, "relu", 0.0, {}, true, true, moe_cfg(3, 1));
  moe.eval();
  moe.to(DType::f64);
  const std::vector<double> w{1.0, -0.5, 0.2, 0.8, -1.0, 0.3};  // router (E = 3, d = 2)
  {
    NoGradGuard ng;
    moe.router->weight.copy_(from_vector(w, {3, 2}));
  }
  const std::vector<double> xv{0.5, 1.0, -1.0, 0.2, 0.3, -0.7, 2.0, 0.1};  // N = 4 tokens
  moe.forward(from_vector(xv, {4, 2}));
  std::vector<double> P(3, 0.0), f(3, 0.0);
  double z = 0;
  for (int n = 0; n < 4; ++n) {
    double l[3], m = -1e300, s = 0;
    for (int e = 0; e < 3; ++e) m = std::max(m, l[e] = w[2 * e] * xv[2 * n] + w[2 * e + 1] * xv[2 * n + 1]);
    for (int e = 0; e < 3; ++e) s += std::exp(l[e] - m);
    int best = 0;
    for (int e = 0; e < 3; ++e) {
      P[e] += std::exp(l[e] - m) / s / 4;
      if (l[e] > l[best]) best = e;
    }
    f[best] += 0.25;
    z += std::pow(m + std::log(s), 2) / 4;
  }
  const double balance = 3 * (f[0] * P[0] + f[1] * P[1] + f[2] * P[2]);
  CHECK(moe.stats().balance == Approx(balance).epsilon(1e-12));
  CHECK(moe.stats().z == Approx(z).epsilon(1e-12));
  CHECK(moe.aux_loss().item() == Approx(0.01 * balance + 0.001 * z).epsilon(1e-12));
}

TEST_CASE("moe: tokens over capacity are dropped, first choices before second choices", "[models][lm]") {
  // The router sends every token to expert 0 first and expert 1 second (a large positive bias on
  // feature 0 of expert 0's row through the input), so capacity decides who is kept.
  nn::MoEFeedForward moe(2, 4, "relu", 0.0, {}, true, true, moe_cfg(2, 2, 0.5));
  moe.eval();
  {
    NoGradGuard ng;
    moe.router->weight.copy_(from_vector(std::vector<float>{5.0f, 0.0f, 1.0f, 0.0f}, {2, 2}));
  }
  std::vector<float> xv;
  for (int n = 0; n < 6; ++n) xv.insert(xv.end(), {1.0f, 0.1f * static_cast<float>(n)});
  const Tensor x = from_vector(xv, {6, 2});
  const Tensor y = moe.forward(x);
  // capacity = ceil(0.5 · 6 · 2 / 2) = 3: tokens 0–2 keep expert 0 (first choices), expert 1 gets
  // the first three second choices (tokens 0–2); tokens 3–5 are dropped for both.
  CHECK(moe.stats().capacity == 3);
  CHECK(moe.stats().load == std::vector<int64_t>{3, 3});
  CHECK(moe.stats().dropped == 6);
  const auto v = y.to_vector<float>();
  for (int n = 3; n < 6; ++n) {
    CHECK(v[2 * n] == 0.0f);
    CHECK(v[2 * n + 1] == 0.0f);
  }
  CHECK(max_abs_diff(y.slice(0, 0, 3), zeros({3, 2})) > 1e-6);
}

TEST_CASE("moe: float64 gradcheck of the layer (k = 1 and 2) and of a decoder-only model with KAN experts", "[models][lm]") {
  for (int64_t k : {1, 2}) {
    CAPTURE(k);
    manual_seed(7);
    nn::MoEFeedForward moe(3, 4, "silu", 0.0, {}, true, true, moe_cfg(3, k));
    moe.eval();
    moe.to(DType::f64);
    Tensor x = rand_leaf({5, 3}, 95 + k);
    std::vector<Tensor> in{x};
    for (const auto& p : moe.parameters()) in.push_back(p);
    // The output plus the auxiliary loss, so both carry gradient to the router.
    REQUIRE_GRADCHECK(
        [&](const std::vector<Tensor>& v) {
          const Tensor y = sum(moe.forward(v[0]));
          return add(y, moe.aux_loss());
        },
        in);
  }
  auto c = tiny_lm("rope");
  c.embedding_dim = 4;
  c.ffn_hidden_dim = 5;
  c.num_layers = 1;
  c.ffn_proj.kind = "kan_chebyshev";
  c.moe = moe_cfg(2, 2, 2.0);
  models::DecoderOnlyTransformer m(c);
  m.eval();
  m.to(DType::f64);
  GradcheckOptions opt;
  opt.max_full = 16;
  const Tensor x = ids({3, 4, 5, 6, 7, 8}, 2);
  REQUIRE_GRADCHECK(
      [&](const std::vector<Tensor>&) {
        const Tensor y = sum(m.forward(x));
        return add(y, m.moe_aux_loss());
      },
      m.parameters(), opt);
}

TEST_CASE("lm: a mixture-of-experts model trains, logs per-expert load, and its count matches the estimate", "[train][lm]") {
  auto cfg = tiny_lm_task(6);
  cfg["model"]["moe"] = {{"num_experts", 3}, {"top_k", 2}, {"capacity_factor", 1.0}};
  cfg["train"]["log_every"] = 2;
  const std::string a = fresh_run_dir("lm", "moe");
  const auto r = train::train_language_model(cfg, a, false, quiet());
  REQUIRE(r.steps == 6);
  int rows = 0;
  for (const auto& m : knot::test::read_metrics(a)) {
    if (!m.contains("loss")) continue;
    ++rows;
    REQUIRE(m.contains("moe_load"));
    REQUIRE(m["moe_load"].size() == 1);     // one layer
    REQUIRE(m["moe_load"][0].size() == 3);  // three experts
    int64_t total = 0;
    for (const auto& n : m["moe_load"][0]) total += n.get<int64_t>();
    // 2 micro-batches of 8 × 16 tokens, two choices each, minus the dropped ones.
    CHECK(total + m["moe_dropped"].get<int64_t>() == 2 * 8 * 16 * 2);
    // E · Σ f_e · P_e lies in (0, E] (1 when balanced; not a minimum: an imbalance whose chosen
    // experts have low mean probability can go below 1).
    CHECK(m["moe_balance_loss"].get<double>() > 0.0);
    CHECK(m["moe_balance_loss"].get<double>() <= 3.0 + 1e-9);
    CHECK(m["moe_z_loss"].get<double>() >= 0.0);
  }
  CHECK(rows == 3);
  const train::LmRun run = train::load_lm_run(a);
  CHECK(static_cast<uint64_t>(run.model->num_parameters()) ==
        models::estimate_model_memory(run.config["model"], {}).parameters);
  std::filesystem::remove_all(a);
}
