// Issue 21: nothing a user trained is lost or silently corrupted. A refused or failed run changes
// nothing in its directory; one writer at a time; a diverged run is a failure (and never writes a
// checkpoint that gives NaN); checkpoints are checked on load (non-finite weights, another model
// config, every trainer_state field); a failed checkpoint write leaves no temp directory; decoding
// a model that outputs NaN is an error.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "autograd/grad_mode.h"
#include "core/safetensors.h"
#include "data/jsonl.h"
#include "models/config.h"
#include "nn/linear.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "tests/helpers.h"
#include "tests/train_helpers.h"
#include "train/checkpoint.h"
#include "train/decode.h"
#include "train/run_lock.h"
#include "train/translation.h"

namespace fs = std::filesystem;
using knot::models::Json;

namespace {

std::string fresh_dir(const std::string& name) { return knot::test::fresh_run_dir("safety", name); }

Json tiny_config(int64_t steps) {
  Json c = knot::test::tiny_translation_config(steps);
  c["model"]["dropout_rate"] = 0.1;
  c["model"]["projection"] = {{"kind", "mlp"}};
  c["train"].update(Json{{"lr", 1e-2}, {"log_every", 5}, {"val_every", 0}, {"checkpoint_every", 5}});
  return c;
}

std::string bytes(const fs::path& p) { return knot::data::read_file_bytes(p.string()); }

// Every file of a run directory (but the lock) with its bytes.
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename() != ".lock") out[fs::relative(e.path(), dir).string()] = bytes(e.path());
  return out;
}

// A task on a Linear model whose probe loss can be made NaN while its weights stay finite.
class ProbeTask : public knot::train::Task {
 public:
  ProbeTask() : model_(4, 2) {}
  std::string name() const override { return "probe"; }
  knot::nn::Module& model() override { return model_; }
  int64_t d_model() const override { return 4; }
  int64_t batches_per_epoch() const override { return 3; }
  knot::train::TaskLoss train_loss(int64_t, int64_t) override {
    return {knot::sum(knot::mul(model_.forward(knot::ones({2, 4})), model_.forward(knot::ones({2, 4})))), 8, knot::Tensor()};
  }
  Json validate() override { return {{"val_loss", 1.0}}; }
  double probe_loss() override { return probe_nan ? std::numeric_limits<double>::quiet_NaN() : 1.0; }
  bool probe_nan = false;

 private:
  knot::nn::Linear model_;
};

}  // namespace

TEST_CASE("run safety: a refused fresh run and a failed resume leave the run directory as it was", "[trainer][safety]") {
  const std::string run = fresh_dir("refused");
  Json cfg = tiny_config(5);
  knot::train::train_translation(cfg, run, false, knot::test::quiet_hooks());
  const auto before = snapshot(run);
  REQUIRE(before.count("config.json"));
  REQUIRE(before.count("tokenizer.json"));

  // The repro: another tokenizer setting and seed over a finished run.
  Json other = cfg;
  other["tokenizer"]["lowercase"] = true;
  other["seed"] = 5;
  REQUIRE_THROWS_WITH(knot::train::train_translation(other, run, false, knot::test::quiet_hooks()),
                      Catch::Contains("already holds checkpoints"));
  REQUIRE(snapshot(run) == before);

  // --resume with another model (a shape change, then a same-shape change) or tokenizer.
  const Json saved = knot::models::load_json_file((fs::path(run) / "config.json").string());
  Json wider = saved;
  wider["model"]["embedding_dim"] = 64;
  REQUIRE_THROWS(knot::train::train_translation(wider, run, true, knot::test::quiet_hooks()));
  REQUIRE(snapshot(run) == before);
  Json heads = saved;
  heads["model"]["num_heads"] = 4;
  REQUIRE_THROWS_WITH(knot::train::train_translation(heads, run, true, knot::test::quiet_hooks()),
                      Catch::Contains("another config"));
  REQUIRE(snapshot(run) == before);
  Json tok = saved;
  tok["tokenizer"]["lowercase"] = true;
  REQUIRE_THROWS_WITH(knot::train::train_translation(tok, run, true, knot::test::quiet_hooks()),
                      Catch::Contains("tokenizer settings differ"));
  REQUIRE(snapshot(run) == before);

  // The run is intact: it resumes and loads as before.
  Json more = saved;
  more["train"]["steps"] = 7;
  const auto r = knot::train::train_translation(more, run, true, knot::test::quiet_hooks());
  REQUIRE(r.start_step == 5);
  REQUIRE(r.steps == 7);
  REQUIRE(knot::train::load_translation_run(run).model);
  fs::remove_all(run);
}

TEST_CASE("run safety: one writer per run directory, the refusal names the holder's pid", "[trainer][safety]") {
  const std::string run = fresh_dir("lock");
  {
    knot::train::RunLock first(run, "train");
    REQUIRE(fs::is_directory(run));
    // flock conflicts between two open file descriptions, within one process too.
    REQUIRE_THROWS_WITH(knot::train::RunLock(run, "train"),
                        Catch::Contains(fmt::format("in use by another process (pid {} (knot train)", ::getpid())));
    // A trainer on the locked directory is refused before it writes anything.
    REQUIRE_THROWS_WITH(knot::train::train_translation(tiny_config(2), run, false, knot::test::quiet_hooks()),
                        Catch::Contains("in use by another process"));
    REQUIRE_FALSE(fs::exists(fs::path(run) / "config.json"));
  }
  // Released with its holder; a directory the lock created and nobody wrote into is removed again.
  REQUIRE_FALSE(fs::exists(run));
  { knot::train::RunLock again(run, "train"); }
  fs::create_directories(run);
  std::ofstream(fs::path(run) / "notes.txt") << "mine";
  { knot::train::RunLock keeps(run, "train"); }
  REQUIRE(fs::exists(fs::path(run) / "notes.txt"));  // a directory it did not create stays
  fs::remove_all(run);
}

TEST_CASE("run safety: a run whose steps keep failing stops as diverged, with no checkpoint and no fake loss",
          "[trainer][safety]") {
  const std::string run = fresh_dir("diverged");
  auto hooks = knot::test::quiet_hooks();
  std::vector<std::string> messages;
  hooks.log = [&](const std::string& s) { messages.push_back(s); };
  hooks.loss_hook = [](int64_t, const knot::Tensor& loss) {
    return knot::mul(loss, std::numeric_limits<double>::quiet_NaN());
  };
  Json no_checkpoints = tiny_config(40);
  no_checkpoints["train"]["checkpoint_every"] = 0;  // (untouched weights would checkpoint fine at step 5)
  const auto r = knot::train::train_translation(no_checkpoints, run, false, hooks);
  REQUIRE(r.diverged);
  REQUIRE_FALSE(r.stopped_on_nan);
  REQUIRE(r.steps == 10);  // train.max_consecutive_skips
  REQUIRE(r.skipped_steps == 10);
  REQUIRE_FALSE(r.has_loss);
  REQUIRE_THAT(r.failure, Catch::Contains("10 steps in a row"));
  REQUIRE(knot::train::latest_checkpoint(run).empty());
  bool says_none = false, says_kept = false;
  for (const auto& m : messages) {
    says_none |= m.find("the run has no checkpoint yet") != std::string::npos;
    says_kept |= m.find("keeping the previous checkpoint") != std::string::npos;
  }
  REQUIRE(says_none);
  REQUIRE_FALSE(says_kept);
  fs::remove_all(run);

  // A fraction of bad steps: every third one (1/3 > 0.25), never 10 in a row.
  hooks.loss_hook = [](int64_t step, const knot::Tensor& loss) {
    return step % 3 == 0 ? knot::mul(loss, std::numeric_limits<double>::quiet_NaN()) : loss;
  };
  const auto f = knot::train::train_translation(tiny_config(40), run, false, hooks);
  REQUIRE(f.diverged);
  REQUIRE(f.steps == 21);  // the first bad step once 20 are done: 7 of 21
  REQUIRE_THAT(f.failure, Catch::Contains("7 of the 21 steps"));
  REQUIRE(f.has_loss);
  REQUIRE(knot::train::latest_checkpoint(run) == (fs::path(run) / "checkpoints/step-000020").string());
  fs::remove_all(run);

  // A limit of 0.5 lets the same run finish.
  Json lenient = tiny_config(24);
  lenient["train"]["max_skipped_fraction"] = 0.5;
  const auto ok = knot::train::train_translation(lenient, run, false, hooks);
  REQUIRE_FALSE(ok.diverged);
  REQUIRE(ok.steps == 24);
  fs::remove_all(run);
}

TEST_CASE("run safety: a checkpoint is written only when a validation batch gives a finite loss", "[trainer][safety]") {
  const std::string run = fresh_dir("probe");
  knot::train::TrainerConfig cfg;
  cfg.steps = 6;
  cfg.checkpoint_every = 2;
  cfg.val_every = 0;
  cfg.progress = false;
  cfg.lr = 1e-3;
  ProbeTask task;
  auto hooks = knot::test::quiet_hooks();
  hooks.loss_hook = [&](int64_t step, const knot::Tensor& loss) {
    task.probe_nan = step >= 3;  // from step 3 on the model "overflows" on validation data
    return loss;
  };
  knot::train::RunSetup setup;
  setup.files.emplace_back("config.json", "{}\n");
  const auto r = knot::train::run_trainer(task, cfg, run, false, hooks, setup);
  REQUIRE(r.diverged);  // the final checkpoint was refused
  REQUIRE_THAT(r.failure, Catch::Contains("final checkpoint was refused"));
  REQUIRE(knot::train::latest_checkpoint(run) == (fs::path(run) / "checkpoints/step-000002").string());
  REQUIRE_FALSE(fs::exists(fs::path(run) / "checkpoints/step-000004"));
  REQUIRE(bytes(fs::path(run) / "config.json") == "{}\n");  // the setup files were written once checked
  bool recorded = false;
  for (const auto& row : knot::test::read_metrics(run)) recorded |= row.value("checkpoint_refused", false);
  REQUIRE(recorded);
  fs::remove_all(run);
}

TEST_CASE("run safety: a checkpoint is checked on load: non-finite weights, another model config, trainer state",
          "[trainer][safety]") {
  const std::string run = fresh_dir("load");
  knot::train::train_translation(tiny_config(5), run, false, knot::test::quiet_hooks());
  const fs::path ck = knot::train::latest_checkpoint(run);
  const Json saved = knot::models::load_json_file((fs::path(run) / "config.json").string());

  SECTION("a NaN or Inf weight is an error naming the tensor") {
    const fs::path model_file = ck / "model.safetensors";
    auto f = knot::load_safetensors(model_file.string());
    const std::string victim = f.tensors.at(3).first;
    {
      const knot::Tensor t = f.tensors.at(3).second;
      REQUIRE(t.dtype() == knot::DType::f32);
      auto v = t.to_vector<float>();
      v[1] = std::numeric_limits<float>::infinity();
      f.tensors.at(3).second = knot::from_vector(v, t.shape());
    }
    knot::save_safetensors(model_file.string(), f.tensors, f.metadata);
    REQUIRE_THROWS_WITH(knot::train::load_translation_run(run),
                        Catch::Contains("'" + victim + "' holds 1 NaN/Inf value(s)"));
    REQUIRE_THROWS_WITH(knot::train::train_translation(saved, run, true, knot::test::quiet_hooks()),
                        Catch::Contains(victim));
  }
  SECTION("a same-shape model of another config (num_heads 2 vs 4) is refused by eval/translate's loader") {
    Json edited = saved;
    edited["model"]["num_heads"] = 4;
    knot::data::write_file_atomic((fs::path(run) / "config.json").string(), edited.dump(2));
    REQUIRE_THROWS_WITH(knot::train::load_translation_run(run), Catch::Contains("another config"));
  }
  SECTION("every trainer_state field is checked, the error naming the key") {
    const fs::path state_file = ck / "trainer_state.json";
    const Json good = knot::models::load_json_file(state_file.string());
    auto expect = [&](const std::string& key, const Json& value, const std::string& message) {
      Json bad = good;
      if (value.is_null()) bad.erase(key);
      else bad[key] = value;
      knot::data::write_file_atomic(state_file.string(), bad.dump(2));
      REQUIRE_THROWS_WITH(knot::train::train_translation(saved, run, true, knot::test::quiet_hooks()),
                          Catch::Contains(message));
    };
    expect("step", -7, "key 'step' must be an integer >= 0, got -7");
    expect("step", "forty", "key 'step' must be an integer >= 0, got \"forty\"");
    expect("step", 4, "key 'step' is 4 but the checkpoint directory is step 5");
    expect("micro_batch", nullptr, "has no key 'micro_batch'");
    expect("skipped_steps", 9, "key 'skipped_steps' (9) exceeds key 'step' (5)");
    expect("window_loss", "nan", "key 'window_loss' must be a finite number");
    expect("best", "low", "key 'best' must be a number or null");
    expect("optimizer_steps", 99, "key 'optimizer_steps' is 99");
    expect("rng", Json{{"default", {{"seed", -1}, {"draws", 0}}}}, "key 'rng.default.seed' must be an integer >= 0");
    expect("task", 3, "key 'task' must be a string");
    knot::data::write_file_atomic(state_file.string(), good.dump(2));
    Json more = saved;
    more["train"]["steps"] = 6;
    REQUIRE(knot::train::train_translation(more, run, true, knot::test::quiet_hooks()).steps == 6);
  }
  fs::remove_all(run);
}

TEST_CASE("run safety: a checkpoint write that fails removes its temp directory", "[trainer][safety]") {
  const std::string run = fresh_dir("tmpclean");
  knot::manual_seed(2);
  knot::nn::Linear model(3, 2);
  knot::optim::Adam opt(model.parameters(), 0.1);
  knot::train::CheckpointOptions full_disk;
  full_disk.after_file = [](const std::string& f) {
    if (f == "optimizer.safetensors") throw knot::Error("write: No space left on device");
  };
  REQUIRE_THROWS_WITH(knot::train::save_checkpoint(run, 1, model, opt, Json{{"step", 1}}, full_disk),
                      Catch::Contains("No space left"));
  for (const auto& e : fs::directory_iterator(fs::path(run) / "checkpoints"))
    FAIL("left behind: " << e.path().string());
  fs::remove_all(run);
}

TEST_CASE("run safety: decoding a model that outputs NaN is an error, not <sos> lines", "[trainer][safety]") {
  knot::models::EncoderDecoderConfig c;
  c.num_encoder_layers = 1;
  c.num_decoder_layers = 1;
  c.vocab_src_size = 10;
  c.vocab_tgt_size = 10;
  c.pad_src_idx = 3;
  c.pad_tgt_idx = 3;
  c.embedding_dim = 8;
  c.num_heads = 2;
  c.ffn_hidden_dim = 8;
  c.dropout_rate = 0.0;
  c.max_length = 16;
  knot::manual_seed(1);
  knot::models::EncoderDecoderTransformer m(c);
  m.eval();
  const knot::train::SpecialTokens sp{0, 1, 3};
  REQUIRE_NOTHROW(knot::train::greedy_decode(m, {{4, 5}}, sp, 4));
  {
    knot::NoGradGuard ng;
    for (auto& [name, t] : m.named_parameters())
      if (name.find("decoder") != std::string::npos && name.find("weight") != std::string::npos)
        t.fill_(std::numeric_limits<double>::quiet_NaN());
  }
  REQUIRE_THROWS_WITH(knot::train::greedy_decode(m, {{4, 5}}, sp, 4), Catch::Contains("output is NaN"));
  REQUIRE_THROWS_WITH(knot::train::beam_search_batch(m, {{4, 5}}, sp, 2, 4, 0.6), Catch::Contains("output is NaN"));
}
