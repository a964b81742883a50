// Fine-tuning (train/finetune.h) on a fake ELECTRA pretraining run (the tiny Electra of
// configs/electra-tiny-mlp.json over the 37-token vocabulary of tests/fixtures/train/
// sentiment-vocab.txt, saved with save_checkpoint) and the tiny sentiment fixture, whose label is
// carried by one sentiment word per sentence: pretrained weights load exactly and only the
// classifier is fresh, a missing or mis-shaped tensor is an error naming it, a short run learns
// (loss falls, accuracy far above chance), resume is bit-identical, accuracy and loss agree with a
// by-hand computation, and bad tasks and configs are errors naming the problem.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>

#include "core/safetensors.h"
#include "data/jsonl.h"
#include "models/config.h"
#include "models/electra.h"
#include "optim/optimizer.h"
#include "tests/helpers.h"
#include "tests/train_helpers.h"
#include "train/checkpoint.h"
#include "train/finetune.h"

namespace fs = std::filesystem;
using knot::models::Json;
namespace train = knot::train;

namespace {

std::string fixture(const std::string& name) { return knot::test::train_fixture(name); }
std::string fresh_dir(const std::string& name) { return knot::test::fresh_run_dir("finetune", name); }
knot::train::TrainerHooks quiet() { return knot::test::quiet_hooks(); }
using knot::test::read_metrics;
using knot::test::timeless;

std::string repo_path(const std::string& rel) { return (fs::path(__FILE__).parent_path().parent_path() / rel).string(); }
constexpr int64_t kVocab = 37;  // lines of sentiment-vocab.txt

Json tiny_model_json() {
  Json m = knot::models::load_json_file(repo_path("configs/electra-tiny-mlp.json"));
  m["vocab_size"] = kVocab;
  m["num_labels"] = 0;  // as a pretraining run has it
  return m;
}

// A fake ELECTRA pretraining run in dir: config.json, vocab.txt, checkpoints/step-000005.
std::shared_ptr<knot::models::Electra> make_pretrain_run(const std::string& dir, const Json& model_j = tiny_model_json()) {
  knot::manual_seed(11);
  auto m = std::make_shared<knot::models::Electra>(knot::models::ElectraConfig::from_json(model_j));
  knot::optim::Adam opt(knot::optim::decay_groups(*m, 0.01), 1e-3);
  train::save_checkpoint(dir, 5, *m, opt, Json{{"task", "electra"}, {"step", 5}});
  knot::models::save_json_file((fs::path(dir) / "config.json").string(),
                               Json{{"task", "electra"}, {"seed", 11}, {"model", model_j}});
  knot::data::write_file_atomic((fs::path(dir) / "vocab.txt").string(),
                                knot::data::read_file_bytes(fixture("sentiment-vocab.txt")));
  return m;
}

Json tiny_config(int64_t steps) {
  return Json{{"task", "sentiment"},
              {"seed", 2},
              {"data",
               {{"train", fixture("sentiment-tiny-train.jsonl")},
                {"val", fixture("sentiment-tiny-val.jsonl")},
                {"test", fixture("sentiment-tiny-test.jsonl")},
                {"max_length", 16},
                {"batch_size", 16},
                {"eval_batch_size", 13},
                {"bucket_batches", 2}}},
              {"model", {{"hidden_dropout", 0.0}, {"attention_dropout", 0.0}}},
              {"train", knot::test::tiny_train_block(steps, 1e-2, 5)}};
}

train::FinetuneOptions options(const std::string& run, const std::string& out, const Json& cfg) {
  train::FinetuneOptions o;
  o.pretrained_run = run;
  o.out_dir = out;
  o.config = cfg;
  return o;
}

std::map<std::string, knot::Tensor> by_name(const knot::nn::NamedTensors& v) { return {v.begin(), v.end()}; }

}  // namespace

TEST_CASE("finetune: pretrained weights load exactly, only the classifier is fresh", "[trainer][finetune]") {
  const std::string run = fresh_dir("load");
  const auto pre = make_pretrain_run(run);
  const auto rf = train::resolve_finetune(options(run, "", tiny_config(10)));
  REQUIRE(rf.out_dir == (fs::path(run) / "finetune-sentiment").string());
  REQUIRE(rf.checkpoint == (fs::path(run) / "checkpoints/step-000005").string());
  REQUIRE(rf.config["model"]["num_labels"] == 2);
  REQUIRE(rf.config["model"]["hidden_dropout"] == 0.0);  // the config's patch over the pretraining model
  REQUIRE(rf.config["model"]["discriminator"]["hidden_size"] == 16);
  REQUIRE(rf.config["pretrained"]["from_scratch"] == false);

  knot::manual_seed(5);
  knot::models::Electra m(knot::models::ElectraConfig::from_json(rf.config["model"]));
  const auto fresh = train::load_pretrained_weights(m, rf.checkpoint + "/model.safetensors");
  REQUIRE(fresh == std::vector<std::string>{"classifier.dense.weight", "classifier.dense.bias",
                                            "classifier.out_proj.weight", "classifier.out_proj.bias"});
  const auto mine = by_name(m.state_dict());
  for (const auto& [n, t] : pre->state_dict()) {
    INFO(n);
    REQUIRE(knot::test::max_abs_diff(mine.at(n), t) == 0.0);
  }
  // The classifier keeps its initialisation: that of a model built with the same seed.
  knot::manual_seed(5);
  knot::models::Electra init(knot::models::ElectraConfig::from_json(rf.config["model"]));
  REQUIRE(knot::test::max_abs_diff(mine.at("classifier.out_proj.weight"),
                                   by_name(init.state_dict()).at("classifier.out_proj.weight")) == 0.0);

  // Through the whole command with lr 0: everything but the classifier ends as pretrained, and the
  // generator and the replaced-token head (no gradient in fine-tuning) are kept in the checkpoint.
  Json cfg = tiny_config(3);
  cfg["train"]["lr"] = 0.0;
  const auto r = train::finetune(options(run, "", cfg), quiet());
  const auto st = knot::load_safetensors(train::latest_checkpoint(r.out_dir) + "/model.safetensors");
  const auto saved = by_name(st.tensors);
  for (const auto& [n, t] : pre->state_dict()) {
    INFO(n);
    REQUIRE(knot::test::max_abs_diff(saved.at(n), t) == 0.0);
  }
  REQUIRE(saved.count("classifier.out_proj.weight") == 1);
  fs::remove_all(run);
}

TEST_CASE("finetune: a checkpoint missing a tensor or with a wrong shape is an error naming it", "[trainer][finetune]") {
  const std::string dir = fresh_dir("bad-ckpt");
  fs::create_directories(dir);
  knot::manual_seed(11);
  knot::models::Electra pre(knot::models::ElectraConfig::from_json(tiny_model_json()));
  Json with_head = tiny_model_json();
  with_head["num_labels"] = 2;
  knot::models::Electra m(knot::models::ElectraConfig::from_json(with_head));
  const knot::Tensor q_weight = m.discriminator->layers->at<knot::nn::EncoderBlock>(0).self_attn->q_proj->parameters()[0];
  const knot::Tensor before = q_weight.clone();
  const std::string path = (fs::path(dir) / "model.safetensors").string();
  const std::string q = "discriminator.layers.0.self_attn.q_proj.weight";

  auto sd = pre.state_dict();
  SECTION("missing tensor") {
    std::erase_if(sd, [&](const auto& p) { return p.first == "discriminator.layers.1.ffn.out_proj.bias" || p.first == q; });
    knot::save_safetensors(path, sd);
    REQUIRE_THROWS_WITH(train::load_pretrained_weights(m, path),
                        Catch::Contains("'discriminator.layers.1.ffn.out_proj.bias'") && Catch::Contains("missing") &&
                            Catch::Contains("'" + q + "'") && Catch::Contains(path));
  }
  SECTION("wrong shape") {
    for (auto& [n, t] : sd)
      if (n == "embeddings.word_embeddings.weight") t = knot::zeros({kVocab + 1, 8});
    knot::save_safetensors(path, sd);
    REQUIRE_THROWS_WITH(train::load_pretrained_weights(m, path),
                        Catch::Contains("'embeddings.word_embeddings.weight' has shape (38, 8) in the checkpoint but "
                                        "(37, 8) in the model"));
  }
  SECTION("a tensor the model does not have") {
    sd.emplace_back("discriminator.pooler.weight", knot::zeros({2, 2}));
    knot::save_safetensors(path, sd);
    REQUIRE_THROWS_WITH(train::load_pretrained_weights(m, path),
                        Catch::Contains("'discriminator.pooler.weight'") && Catch::Contains("not in the model"));
  }
  SECTION("a classifier of another label count") {
    Json three_j = tiny_model_json();
    three_j["num_labels"] = 3;
    knot::models::Electra three(knot::models::ElectraConfig::from_json(three_j));
    knot::save_safetensors(path, three.state_dict());
    REQUIRE_THROWS_WITH(train::load_pretrained_weights(m, path),
                        Catch::Contains("'classifier.out_proj.weight' has shape (3, 16)"));
  }
  // Nothing was copied before the error.
  REQUIRE(knot::test::max_abs_diff(q_weight, before) == 0.0);
  fs::remove_all(dir);
}

TEST_CASE("finetune: a tiny sentiment run lowers the loss, beats chance and writes a loadable run", "[trainer][finetune]") {
  const std::string run = fresh_dir("learn"), out = fresh_dir("learn-out");
  const auto pre = make_pretrain_run(run);
  const auto r = train::finetune(options(run, out, tiny_config(160)), quiet());
  REQUIRE(r.out_dir == out);
  REQUIRE(r.train.steps == 160);
  REQUIRE(r.train.skipped_steps == 0);
  std::vector<double> losses, val_acc;
  for (const auto& row : knot::data::read_jsonl((fs::path(out) / "metrics.jsonl").string())) {
    if (row.contains("loss")) losses.push_back(row["loss"].get<double>());
    if (row.contains("val_acc")) {
      val_acc.push_back(row["val_acc"].get<double>());
      REQUIRE(row["val_error"].get<double>() == Approx(1.0 - val_acc.back()));
    }
  }
  REQUIRE(losses.size() == 32);  // log_every 5
  REQUIRE(val_acc.size() == 8);   // val_every 20
  INFO("first loss " << losses.front() << ", last " << losses.back() << ", test accuracy " << r.test.accuracy());
  REQUIRE(losses.back() < losses.front() - 0.4);
  REQUIRE(val_acc.back() >= 0.8);
  REQUIRE(r.test.n == 32);
  REQUIRE(r.test.accuracy() >= 0.8);  // chance is 0.5
  for (const char* f : {"config.json", "vocab.txt", "metrics.jsonl", "result.json", "checkpoints/latest"})
    REQUIRE(fs::exists(fs::path(out) / f));
  const Json result = knot::models::load_json_file((fs::path(out) / "result.json").string());
  REQUIRE(result["n"] == 32);
  REQUIRE(result["correct"] == r.test.correct);
  REQUIRE(result["test_accuracy"].get<double>() == Approx(r.test.accuracy()));
  REQUIRE(result["from_scratch"] == false);
  REQUIRE(result["pretrained_checkpoint"] == (fs::path(run) / "checkpoints/step-000005").string());

  // The generator and the replaced-token head get no gradient in fine-tuning: saved exactly as pretrained.
  const auto saved_w = by_name(knot::load_safetensors(train::latest_checkpoint(out) + "/model.safetensors").tensors);
  int64_t kept = 0;
  for (const auto& [n, t] : pre->state_dict())
    if (n.rfind("generator.", 0) == 0 || n.rfind("discriminator.head.", 0) == 0) {
      INFO(n);
      REQUIRE(knot::test::max_abs_diff(saved_w.at(n), t) == 0.0);
      ++kept;
    }
  REQUIRE(kept > 10);
  REQUIRE(knot::test::max_abs_diff(saved_w.at("discriminator.layers.0.ffn.in_proj.weight"),
                                   by_name(pre->state_dict()).at("discriminator.layers.0.ffn.in_proj.weight")) > 0);

  // The output directory is a run by itself: its config, vocabulary and checkpoint give the same test result.
  const Json saved = knot::models::load_json_file((fs::path(out) / "config.json").string());
  REQUIRE(saved["task"] == "sentiment");
  REQUIRE(saved["model"]["num_labels"] == 2);
  REQUIRE(saved["model"]["vocab_size"] == kVocab);
  auto m = std::make_shared<knot::models::Electra>(knot::models::ElectraConfig::from_json(saved["model"]));
  train::load_checkpoint(train::latest_checkpoint(out), *m, nullptr);
  const auto tok = knot::data::load_tokenizer((fs::path(out) / "vocab.txt").string());
  auto test = train::read_labelled_texts(fixture("sentiment-tiny-test.jsonl"), 2);
  train::encode_labelled(test, *tok, 16);
  const auto e = train::evaluate_classifier(*m, test, 0, 5);
  REQUIRE(e.correct == r.test.correct);
  REQUIRE(e.loss() == Approx(r.test.loss()).epsilon(1e-5));

  // The same output directory again without --resume: an error, and the run is untouched.
  const std::string cfg_before = knot::data::read_file_bytes((fs::path(out) / "config.json").string());
  REQUIRE_THROWS_WITH(train::finetune(options(run, out, tiny_config(60)), quiet()),
                      Catch::Contains("already holds checkpoints") && Catch::Contains("--resume"));
  REQUIRE(knot::data::read_file_bytes((fs::path(out) / "config.json").string()) == cfg_before);
  fs::remove_all(run);
  fs::remove_all(out);
}

TEST_CASE("finetune: a resumed run ends bit-identical to an uninterrupted one", "[trainer][finetune]") {
  const std::string run = fresh_dir("resume"), a = fresh_dir("resume-a"), b = fresh_dir("resume-b");
  make_pretrain_run(run);
  Json cfg = tiny_config(24);
  cfg["model"]["hidden_dropout"] = 0.1;  // dropout draws must resume too
  cfg["train"]["checkpoint_every"] = 8;
  cfg["train"]["val_every"] = 8;
  const auto ra = train::finetune(options(run, a, cfg), quiet());
  auto hooks = quiet();
  hooks.stop_after_steps = 11;  // killed after step 11; the latest checkpoint is step 8
  train::finetune(options(run, b, cfg), hooks);
  auto resume = options(run, b, Json());
  resume.resume = true;
  const auto rb = train::finetune(resume, quiet());
  REQUIRE(knot::data::read_file_bytes(a + "/checkpoints/step-000024/model.safetensors") ==
          knot::data::read_file_bytes(b + "/checkpoints/step-000024/model.safetensors"));
  REQUIRE(rb.test.correct == ra.test.correct);
  REQUIRE(rb.test.loss() == ra.test.loss());
  for (const auto& d : {run, a, b}) fs::remove_all(d);
}

TEST_CASE("finetune: from scratch needs no checkpoint and starts from random weights", "[trainer][finetune]") {
  const std::string run = fresh_dir("scratch"), out = fresh_dir("scratch-out");
  const auto pre = make_pretrain_run(run);
  fs::remove_all(fs::path(run) / "checkpoints");  // a config and a vocabulary are all it needs
  {  // the pretraining run started its embeddings at N(0, 0.05²)
    Json c = knot::models::load_json_file((fs::path(run) / "config.json").string());
    c["electra"] = Json{{"initializer_range", 0.05}};
    knot::models::save_json_file((fs::path(run) / "config.json").string(), c);
  }
  auto o = options(run, out, tiny_config(2));
  REQUIRE_THROWS_WITH(train::resolve_finetune(o), Catch::Contains("no checkpoint") && Catch::Contains("--from-scratch"));
  o.from_scratch = true;
  o.config["train"]["lr"] = 0.0;
  const auto r = train::finetune(o, quiet());
  const Json saved = knot::models::load_json_file((fs::path(out) / "config.json").string());
  REQUIRE(saved["pretrained"]["from_scratch"] == true);
  REQUIRE(saved["pretrained"]["checkpoint"].is_null());
  const auto st = by_name(knot::load_safetensors(train::latest_checkpoint(out) + "/model.safetensors").tensors);
  REQUIRE(knot::test::max_abs_diff(st.at("discriminator.layers.0.ffn.in_proj.weight"),
                                   by_name(pre->state_dict()).at("discriminator.layers.0.ffn.in_proj.weight")) > 0);
  REQUIRE(knot::models::load_json_file((fs::path(out) / "result.json").string())["from_scratch"] == true);
  // The embeddings start as that run's pretraining started them: N(0, 0.05²), the pad row zero
  // (lr 0 keeps them).
  auto embedding_std = [](const knot::Tensor& weight) {
    const auto w = weight.to(knot::DType::f64).contiguous();
    const int64_t V = w.size(0), E = w.size(1);
    const auto v = w.to_vector<double>();
    double ss = 0;
    for (int64_t i = E; i < V * E; ++i) ss += v[i] * v[i];  // row 0 is [PAD]
    for (int64_t j = 0; j < E; ++j) REQUIRE(v[j] == 0.0);
    return std::sqrt(ss / static_cast<double>((V - 1) * E));
  };
  const double sd = embedding_std(st.at("embeddings.word_embeddings.weight"));
  INFO("embedding std " << sd);
  REQUIRE(sd > 0.04);
  REQUIRE(sd < 0.06);

  // Without a run: a model config file and a vocabulary; vocab_size comes from the vocabulary.
  const std::string out2 = fresh_dir("scratch-model");
  train::FinetuneOptions m;
  m.from_scratch = true;
  m.model_config = repo_path("configs/electra-tiny-mlp.json");
  m.vocab = fixture("sentiment-vocab.txt");
  m.out_dir = out2;
  m.config = tiny_config(2);
  m.config["train"]["lr"] = 0.0;
  m.overrides = {"model.discriminator.num_layers=1"};
  const auto rm = train::finetune(m, quiet());
  const Json saved2 = knot::models::load_json_file((fs::path(out2) / "config.json").string());
  REQUIRE(saved2["model"]["vocab_size"] == kVocab);
  // No pretraining run to follow: ELECTRA's default N(0, 0.02²).
  const double sd2 = embedding_std(by_name(knot::load_safetensors(train::latest_checkpoint(out2) +
                                                                  "/model.safetensors").tensors)
                                       .at("embeddings.word_embeddings.weight"));
  INFO("embedding std without a run " << sd2);
  REQUIRE(sd2 > 0.014);
  REQUIRE(sd2 < 0.026);
  REQUIRE(saved2["model"]["discriminator"]["num_layers"] == 1);
  REQUIRE(rm.test.n == 32);
  m.from_scratch = false;
  REQUIRE_THROWS_WITH(train::resolve_finetune(m), Catch::Contains("--from-scratch"));
  for (const auto& d : {run, out, out2}) fs::remove_all(d);
}

TEST_CASE("finetune: predictions, accuracy and loss agree with a by-hand computation", "[trainer][finetune]") {
  // Argmax per row; a tie goes to the first label.
  const knot::Tensor logits = knot::from_values({0.2, 1.5, -1.0, -3.0, 0.7, 0.7, 2.0, 1.9}, {4, 2});
  REQUIRE(train::predict_labels(logits) == std::vector<int64_t>{1, 0, 0, 0});

  Json mj = tiny_model_json();
  mj["num_labels"] = 2;
  knot::manual_seed(4);
  knot::models::Electra m(knot::models::ElectraConfig::from_json(mj));
  const auto tok = knot::data::load_tokenizer(fixture("sentiment-vocab.txt"));
  auto ex = train::read_labelled_texts(fixture("sentiment-tiny-val.jsonl"), 2);
  REQUIRE(train::encode_labelled(ex, *tok, 7) > 0);  // some sentences are cut to 7 tokens
  for (const auto& e : ex) {
    REQUIRE(e.ids.size() <= 7);
    REQUIRE(e.ids.front() == tok->bos_id());
    REQUIRE(e.ids.back() == tok->eos_id());
  }
  // One sentence at a time, no padding: log-softmax and argmax by hand.
  m.eval();
  double loss_sum = 0;
  int64_t correct = 0;
  for (const auto& e : ex) {
    const auto z = m.classify(knot::from_vector(e.ids, {1, static_cast<int64_t>(e.ids.size())})).to_vector<double>();
    const double zmax = std::max(z[0], z[1]);
    const double lse = zmax + std::log(std::exp(z[0] - zmax) + std::exp(z[1] - zmax));
    loss_sum += lse - z[static_cast<size_t>(e.label)];
    correct += (z[1] > z[0] ? 1 : 0) == e.label;
  }
  // Batched with padding (batch size 5: ragged last batch) gives the same numbers.
  const auto ev = train::evaluate_classifier(m, ex, 0, 5);
  REQUIRE(ev.n == 32);
  REQUIRE(ev.correct == correct);
  REQUIRE(ev.accuracy() == Approx(static_cast<double>(correct) / 32.0));
  REQUIRE(ev.loss() == Approx(loss_sum / 32.0).epsilon(1e-5));
}

TEST_CASE("finetune: unknown tasks, bad data and bad configs are errors naming the problem", "[trainer][finetune]") {
  const std::string run = fresh_dir("errors"), out = fresh_dir("errors-out");
  make_pretrain_run(run);
  auto o = options(run, out, tiny_config(2));
  o.task = "other";
  REQUIRE_THROWS_WITH(train::finetune(o, quiet()), Catch::Contains("unknown task 'other'") && Catch::Contains("sentiment"));
  o.task = "sentiment";

  SECTION("unknown key") {
    o.config["data"]["max_lenght"] = 8;
    REQUIRE_THROWS_WITH(train::finetune(o, quiet()), Catch::Contains("max_lenght") && Catch::Contains("'data'"));
  }
  SECTION("override of an unknown key") {
    o.overrides = {"train.stepz=3"};
    REQUIRE_THROWS_WITH(train::finetune(o, quiet()), Catch::Contains("'train'") && Catch::Contains("'stepz'"));
  }
  SECTION("num_labels") {
    o.overrides = {"model.num_labels=3"};
    REQUIRE_THROWS_WITH(train::finetune(o, quiet()), Catch::Contains("num_labels must be 2"));
  }
  SECTION("max_length beyond the position table") {
    o.overrides = {"data.max_length=32"};
    REQUIRE_THROWS_WITH(train::finetune(o, quiet()), Catch::Contains("max_position_embeddings"));
  }
  SECTION("vocabulary size") {
    knot::data::write_file_atomic(run + "/vocab.txt",
                                  knot::data::read_file_bytes(repo_path("tests/fixtures/tokenizers/vocab.txt")));
    REQUIRE_THROWS_WITH(train::finetune(o, quiet()), Catch::Contains("vocab_size") && Catch::Contains("34 tokens"));
  }
  SECTION("a label out of range") {
    const std::string bad = out + "-bad.jsonl";
    knot::data::write_file_atomic(bad, "{\"text\": \"good\", \"label\": 1}\n{\"text\": \"bad\", \"label\": 2}\n");
    o.config["data"]["train"] = bad;
    REQUIRE_THROWS_WITH(train::finetune(o, quiet()), Catch::Contains(bad + ":2") && Catch::Contains("'label'"));
    fs::remove(bad);
  }
  SECTION("not a pretraining run") {
    o.pretrained_run = out;
    fs::create_directories(out);
    REQUIRE_THROWS_WITH(train::finetune(o, quiet()), Catch::Contains("has no config.json"));
  }
  REQUIRE_FALSE(fs::exists(fs::path(out) / "checkpoints"));
  fs::remove_all(run);
  fs::remove_all(out);
}
