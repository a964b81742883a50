// The training loop end to end on the tiny fixture (tests/fixtures/train): the loss falls, a
// resumed run equals an uninterrupted one bit for bit, an interrupted checkpoint write leaves
// `latest` loadable, NaN losses are skipped and never saved, and config errors name the key.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include "core/safetensors.h"
#include "data/jsonl.h"
#include "models/config.h"
#include "autograd/grad_mode.h"
#include "nn/basis_registry.h"
#include "nn/kan.h"
#include "nn/kan_linear.h"
#include "nn/linear.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "ops/indexing.h"
#include "tests/helpers.h"
#include "kernels/linalg.h"
#include "tests/train_helpers.h"
#include "train/checkpoint.h"
#include "train/translation.h"

namespace fs = std::filesystem;
using knot::models::Json;

namespace {

std::string fixture(const std::string& name) { return knot::test::train_fixture(name); }
std::string fresh_dir(const std::string& name) { return knot::test::fresh_run_dir("train", name); }
knot::train::TrainerHooks quiet() { return knot::test::quiet_hooks(); }
using knot::test::read_metrics;
using knot::test::timeless;

// The shared tiny config (train_helpers.h) with label smoothing, dropout, pre-LN, a schedule,
// weight decay, clipping and checkpoints: the trainer paths these tests exercise.
Json tiny_config(int64_t steps) {
  Json c = knot::test::tiny_translation_config(steps);
  c.merge_patch({{"translation", {{"label_smoothing", 0.1}}},
                 {"model", {{"dropout_rate", 0.1}, {"pre_layer_norm", true}, {"projection", {{"kind", "mlp"}}}}},
                 {"train",
                  {{"lr", 1e-2},
                   {"schedule", {{"kind", "linear"}, {"warmup_steps", 4}}},
                   {"optimizer", {{"weight_decay", 0.01}}},
                   {"clip_grad_norm", 1.0},
                   {"log_every", 3},
                   {"val_every", 10},
                   {"checkpoint_every", 10},
                   {"keep_checkpoints", 2}}}});
  return c;
}

std::string file_bytes(const std::string& p) { return knot::data::read_file_bytes(p); }

}  // namespace

TEST_CASE("trainer: a tiny translation run lowers the loss and writes a complete run directory", "[trainer]") {
  const std::string run = fresh_dir("falls");
  const auto r = knot::train::train_translation(tiny_config(30), run, false, quiet());
  REQUIRE(r.steps == 30);
  REQUIRE(r.skipped_steps == 0);
  const auto m = read_metrics(run);
  std::vector<double> losses, vals;
  for (const auto& row : m) {
    if (row.contains("loss")) losses.push_back(row["loss"].get<double>());
    if (row.contains("val_loss")) vals.push_back(row["val_loss"].get<double>());
  }
  REQUIRE(losses.size() == 10);  // log_every 3 over 30 steps
  REQUIRE(vals.size() == 3);     // steps 10, 20, 30
  INFO("first loss " << losses.front() << ", last " << losses.back());
  REQUIRE(losses.back() < losses.front() - 0.5);
  REQUIRE(vals.back() < vals.front());
  for (const char* f : {"config.json", "tokenizer.json", "metrics.jsonl", "checkpoints/latest"})
    REQUIRE(fs::exists(fs::path(run) / f));
  REQUIRE(fs::exists(fs::path(run) / "checkpoints/step-000030"));
  REQUIRE(fs::exists(fs::path(run) / "checkpoints/step-000020"));
  REQUIRE_FALSE(fs::exists(fs::path(run) / "checkpoints/step-000010"));  // keep_checkpoints 2
  // The saved config is complete: the model section took its vocabulary from the tokenizer.
  const Json saved = knot::models::load_json_file((fs::path(run) / "config.json").string());
  REQUIRE(saved["model"]["vocab_src_size"].get<int64_t>() <= 200);
  REQUIRE(saved["model"]["pad_tgt_idx"] == 3);
  // The run loads back for translate/eval and gives the same validation loss.
  const auto loaded = knot::train::load_translation_run(run);
  REQUIRE(loaded.checkpoint == (fs::path(run) / "checkpoints/step-000030").string());
  auto val = knot::train::read_translation_pairs(fixture("tiny-val.jsonl"), "en", "de");
  knot::train::encode_pairs(val, *loaded.tokenizer);
  std::erase_if(val, [](const auto& p) { return p.src.size() + 1 > 24 || p.tgt.size() + 1 > 24; });
  const auto ls = knot::train::teacher_forced_loss(*loaded.model, val, knot::train::special_tokens(*loaded.tokenizer), 16);
  REQUIRE(ls.mean() == Approx(vals.back()).epsilon(1e-9));
  // A fresh run into a directory that has checkpoints is refused (nothing is overwritten).
  REQUIRE_THROWS_WITH(knot::train::train_translation(tiny_config(30), run, false, quiet()),
                      Catch::Contains("--resume"));
  fs::remove_all(run);
}

TEST_CASE("trainer: train.matmul_precision bf16 trains, differs from f32, and is scoped to the run", "[trainer]") {
  // The same tiny run with bfloat16 GEMMs: the loss still falls, the numbers are not the f32 run's
  // (where the CPU has bf16 GEMMs), and the caller's precision is back afterwards.
  const std::string run32 = fresh_dir("prec32"), run16 = fresh_dir("prec16");
  Json c = tiny_config(20);
  c["model"]["embedding_dim"] = 64;  // GEMMs large enough for the rounding to show in the loss
  knot::train::train_translation(c, run32, false, quiet());
  c["train"]["matmul_precision"] = "bf16";
  REQUIRE(knot::matmul_precision() == knot::MatmulPrecision::highest);
  knot::train::train_translation(c, run16, false, quiet());
  REQUIRE(knot::matmul_precision() == knot::MatmulPrecision::highest);
  std::vector<double> l32, l16;
  for (const auto& row : read_metrics(run32))
    if (row.contains("loss")) l32.push_back(row["loss"].get<double>());
  for (const auto& row : read_metrics(run16))
    if (row.contains("loss")) l16.push_back(row["loss"].get<double>());
  REQUIRE(l16.size() == l32.size());
  INFO("f32 losses " << l32.front() << " -> " << l32.back() << ", bf16 " << l16.front() << " -> " << l16.back());
  REQUIRE(l16.back() < l16.front() - 0.3);
  REQUIRE(std::abs(l16.back() - l32.back()) < 0.2);
  if (knot::onednn_available() && __builtin_cpu_supports("avx512bf16")) REQUIRE(l16 != l32);
  const Json saved = knot::models::load_json_file((fs::path(run16) / "config.json").string());
  REQUIRE(saved["train"]["matmul_precision"] == "bf16");
  fs::remove_all(run32);
  fs::remove_all(run16);
}

TEST_CASE("trainer: train.optimizer_in_backward gives the same run as stepping after backward", "[trainer]") {
  const std::string plain = fresh_dir("oib-plain"), fused = fresh_dir("oib-fused");
  Json c = tiny_config(12);
  c["train"]["clip_grad_norm"] = 0.0;
  knot::train::train_translation(c, plain, false, quiet());
  c["train"]["optimizer_in_backward"] = true;
  knot::train::train_translation(c, fused, false, quiet());
  // every logged loss and validation number, and the final weights, bit for bit
  const auto a = timeless(read_metrics(plain)), b = timeless(read_metrics(fused));
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) REQUIRE(a[i] == b[i]);
  const auto la = knot::train::load_translation_run(plain), lb = knot::train::load_translation_run(fused);
  const auto pa = la.model->named_parameters(), pb = lb.model->named_parameters();
  REQUIRE(pa.size() == pb.size());
  for (size_t i = 0; i < pa.size(); ++i) REQUIRE(knot::test::max_abs_diff(pa[i].second, pb[i].second) == 0.0);
  fs::remove_all(plain);
  fs::remove_all(fused);
}

TEST_CASE("trainer: with optimizer_in_backward a non-finite gradient stops the run and keeps the last checkpoint",
          "[trainer]") {
  // The update already happened inside backward, so the step cannot be skipped: the run stops, the
  // step is named, and no NaN weights are saved.
  const std::string run = fresh_dir("oib-nan");
  Json cfg = tiny_config(12);
  cfg["train"]["checkpoint_every"] = 4;
  cfg["train"]["clip_grad_norm"] = 0.0;
  cfg["train"]["optimizer_in_backward"] = true;
  auto hooks = quiet();
  std::vector<std::string> messages;
  hooks.log = [&](const std::string& s) { messages.push_back(s); };
  // A finite loss with an infinite gradient at step 6: sqrt(z) at z = 0 (z = loss - loss.detach()).
  hooks.loss_hook = [](int64_t step, const knot::Tensor& loss) {
    return step == 6 ? knot::add(loss, knot::sqrt(knot::sub(loss, loss.detach()))) : loss;
  };
  const auto r = knot::train::train_translation(cfg, run, false, hooks);
  REQUIRE(r.stopped_on_nan);
  REQUIRE(r.steps == 6);
  bool named = false;
  for (const auto& m : messages) named |= m.find("step 6: the update inside backward") != std::string::npos;
  REQUIRE(named);
  REQUIRE(knot::train::latest_checkpoint(run) == (fs::path(run) / "checkpoints/step-000004").string());
  const auto loaded = knot::train::load_translation_run(run);
  REQUIRE(knot::train::all_finite(*loaded.model));
  fs::remove_all(run);
}

TEST_CASE("trainer: a resumed run ends bit-identical to an uninterrupted one", "[trainer]") {
  const std::string a = fresh_dir("uninterrupted"), b = fresh_dir("resumed");
  Json cfg = tiny_config(25);
  knot::train::train_translation(cfg, a, false, quiet());

  auto hooks = quiet();
  hooks.stop_after_steps = 14;  // "killed" at step 14: the latest checkpoint is step 10
  const auto first = knot::train::train_translation(cfg, b, false, hooks);
  REQUIRE(first.steps == 14);
  REQUIRE(knot::train::latest_checkpoint(b) == (fs::path(b) / "checkpoints/step-000010").string());
  // Resume from b's saved config, as `knot train --resume` does.
  const Json saved = knot::models::load_json_file((fs::path(b) / "config.json").string());
  const auto second = knot::train::train_translation(saved, b, true, quiet());
  REQUIRE(second.start_step == 10);
  REQUIRE(second.steps == 25);

  const std::string fa = (fs::path(a) / "checkpoints/step-000025").string(), fb = (fs::path(b) / "checkpoints/step-000025").string();
  REQUIRE(file_bytes(fa + "/model.safetensors") == file_bytes(fb + "/model.safetensors"));
  REQUIRE(file_bytes(fa + "/optimizer.safetensors") == file_bytes(fb + "/optimizer.safetensors"));
  REQUIRE(knot::models::load_json_file(fa + "/trainer_state.json") == knot::models::load_json_file(fb + "/trainer_state.json"));
  // Resuming a finished run trains nothing and leaves its checkpoint as it was.
  const auto third = knot::train::train_translation(saved, b, true, quiet());
  REQUIRE(third.start_step == 25);
  REQUIRE(third.steps == 25);
  REQUIRE(file_bytes(fa + "/model.safetensors") == file_bytes(fb + "/model.safetensors"));
  const auto ma = timeless(read_metrics(a)), mb = timeless(read_metrics(b));
  REQUIRE(ma.size() == mb.size());
  for (size_t i = 0; i < ma.size(); ++i) REQUIRE(ma[i].dump() == mb[i].dump());

  // Same seed, fresh run: identical metrics; another seed: different ones.
  const std::string c = fresh_dir("again");
  knot::train::train_translation(cfg, c, false, quiet());
  const auto mc = timeless(read_metrics(c));
  REQUIRE(mc.size() == ma.size());
  for (size_t i = 0; i < ma.size(); ++i) REQUIRE(ma[i].dump() == mc[i].dump());
  fs::remove_all(c);
  cfg["seed"] = 4;
  knot::train::train_translation(cfg, c, false, quiet());
  REQUIRE(timeless(read_metrics(c))[0].dump() != ma[0].dump());
  for (const auto& d : {a, b, c}) fs::remove_all(d);
}

TEST_CASE("checkpoint: an interrupted write leaves the previous checkpoint as latest, NaN weights are never written",
          "[trainer]") {
  const std::string run = fresh_dir("ckpt");
  knot::manual_seed(5);
  knot::nn::Linear model(4, 3);
  knot::optim::Adam opt(model.parameters(), 0.1);
  auto step_once = [&]() {
    knot::sum(knot::mul(model.forward(knot::ones({2, 4})), knot::ones({2, 3}))).backward();
    opt.step();
    opt.zero_grad();
  };
  step_once();
  const std::string first = knot::train::save_checkpoint(run, 1, model, opt, Json{{"step", 1}});
  const auto saved_w = model.weight.to_vector<float>();
  REQUIRE(knot::train::latest_checkpoint(run) == first);

  // A crash after the model file of step 2 was written: latest still names step 1.
  step_once();
  knot::train::CheckpointOptions crash;
  crash.after_file = [](const std::string& f) {
    if (f == "optimizer.safetensors") throw std::runtime_error("simulated kill");
  };
  REQUIRE_THROWS_WITH(knot::train::save_checkpoint(run, 2, model, opt, Json{{"step", 2}}, crash), "simulated kill");
  // Another crash leaves a corrupt file in a temp dir of its own.
  const fs::path junk = fs::path(run) / "checkpoints" / ".tmp-step-000003-999999";
  fs::create_directories(junk);
  std::ofstream(junk / "model.safetensors") << "\x10\x00garbage";
  REQUIRE(knot::train::latest_checkpoint(run) == first);
  REQUIRE_FALSE(fs::exists(fs::path(run) / "checkpoints/step-000002"));

  knot::nn::Linear restored(4, 3);
  knot::optim::Adam opt2(restored.parameters(), 0.1);
  const auto ck = knot::train::load_checkpoint(knot::train::latest_checkpoint(run), restored, &opt2);
  REQUIRE(ck.trainer_state["step"] == 1);
  REQUIRE(restored.weight.to_vector<float>() == saved_w);
  REQUIRE(opt2.steps() == 1);

  // The next good save cleans the leftovers up.
  const std::string third = knot::train::save_checkpoint(run, 3, model, opt, Json{{"step", 3}});
  REQUIRE(knot::train::latest_checkpoint(run) == third);
  for (const auto& e : fs::directory_iterator(fs::path(run) / "checkpoints"))
    REQUIRE(e.path().filename().string().rfind(".tmp-", 0) != 0);

  // NaN weights: refused, latest unchanged.
  {
    knot::NoGradGuard ng;
    model.weight.fill_(std::numeric_limits<double>::quiet_NaN());
  }
  REQUIRE_THROWS_WITH(knot::train::save_checkpoint(run, 4, model, opt, Json{{"step", 4}}), Catch::Contains("NaN"));
  REQUIRE(knot::train::latest_checkpoint(run) == third);
  REQUIRE_FALSE(fs::exists(fs::path(run) / "checkpoints/step-000004"));

  // A `latest` naming a missing directory is an error naming it.
  knot::data::write_file_atomic((fs::path(run) / "checkpoints/latest").string(), "step-000042\n");
  REQUIRE_THROWS_WITH(knot::train::latest_checkpoint(run), Catch::Contains("step-000042"));
  fs::remove_all(run);
}

TEST_CASE("trainer: a NaN loss skips the step (or stops), names the step, and is never saved", "[trainer]") {
  const std::string run = fresh_dir("nan");
  Json cfg = tiny_config(12);
  cfg["train"]["checkpoint_every"] = 4;
  auto hooks = quiet();
  std::vector<std::string> messages;
  hooks.log = [&](const std::string& s) { messages.push_back(s); };
  hooks.loss_hook = [](int64_t step, const knot::Tensor& loss) {
    return step == 6 ? knot::mul(loss, std::numeric_limits<double>::quiet_NaN()) : loss;
  };
  const auto r = knot::train::train_translation(cfg, run, false, hooks);
  REQUIRE(r.steps == 12);
  REQUIRE(r.skipped_steps == 1);
  bool named = false;
  for (const auto& m : messages) named |= m.find("step 6: loss is nan") != std::string::npos;
  REQUIRE(named);
  bool recorded = false;
  for (const auto& row : read_metrics(run)) {
    if (row.value("skipped", false)) {
      REQUIRE(row["step"] == 6);
      recorded = true;
    }
    if (row.contains("loss")) REQUIRE(std::isfinite(row["loss"].get<double>()));
  }
  REQUIRE(recorded);
  const auto loaded = knot::train::load_translation_run(run);
  REQUIRE(knot::train::all_finite(*loaded.model));
  REQUIRE(knot::train::load_checkpoint(loaded.checkpoint, *loaded.model, nullptr).trainer_state["skipped_steps"] == 1);
  fs::remove_all(run);

  // on_nan = stop: the run ends at the bad step and the last checkpoint is the one before it.
  cfg["train"]["on_nan"] = "stop";
  const auto s = knot::train::train_translation(cfg, run, false, hooks);
  REQUIRE(s.stopped_on_nan);
  REQUIRE(s.steps == 6);
  REQUIRE(knot::train::latest_checkpoint(run) == (fs::path(run) / "checkpoints/step-000004").string());
  fs::remove_all(run);
}

TEST_CASE("trainer: config errors name the key", "[trainer]") {
  const std::string run = fresh_dir("cfg");
  auto expect = [&](Json cfg, const std::string& key) {
    REQUIRE_THROWS_WITH(knot::train::train_translation(cfg, run, false, quiet()), Catch::Contains(key));
  };
  Json c = tiny_config(2);
  c["train"]["stpes"] = 3;
  expect(c, "'stpes'");
  c = tiny_config(2);
  c["train"]["steps"] = "many";
  expect(c, "'steps'");
  c = tiny_config(2);
  c["train"]["on_nan"] = "ignore";
  expect(c, "'on_nan'");
  c = tiny_config(2);
  c["train"]["matmul_precision"] = "fp8";
  expect(c, "'matmul_precision'");
  c = tiny_config(2);
  c["train"]["optimizer_in_backward"] = true;  // with the default clip_grad_norm 1
  expect(c, "'optimizer_in_backward'");
  c = tiny_config(2);
  c["data"]["batch_size"] = 0;
  expect(c, "'batch_size'");
  c = tiny_config(2);
  c["tokenizer"]["vocab"] = 100;
  expect(c, "'vocab'");
  c = tiny_config(2);
  c["translation"]["label_smoothing"] = 1.5;
  expect(c, "'label_smoothing'");
  c = tiny_config(2);
  c["model"]["num_head"] = 2;
  expect(c, "'num_head'");
  c = tiny_config(2);
  c["train"]["optimizer"]["kind"] = "sgd";
  expect(c, "'kind'");
  c = tiny_config(2);
  c["bogus"] = 1;
  expect(c, "'bogus'");
  c = tiny_config(2);
  c["data"]["train"] = "/nonexistent/train.jsonl";
  expect(c, "/nonexistent/train.jsonl");
  // Overrides on the command line go through the same checks: a key the file leaves out is fine when
  // the reader knows it, a typo is an error naming it (with a hint).
  c = tiny_config(2);
  knot::models::apply_override(c, "train.stepz=4");
  expect(c, "unknown key 'stepz'; did you mean 'steps'?");
  c = tiny_config(2);
  REQUIRE(!c["train"].contains("matmul_precision"));
  knot::models::apply_override(c, "train.matmul_precision=fp8");
  expect(c, "'matmul_precision'");
  fs::remove_all(run);
}

TEST_CASE("trainer: update_kan_grids adapts every B-spline layer of a model and keeps its outputs", "[trainer][kan]") {
  using namespace knot;
  using knot::test::max_abs_diff;
  nn::KAN kan({3, 4, 2}, "bspline", {{"dtype", "f64"}, {"seed", 7}});
  {
    NoGradGuard ng;
    Generator gen(8);
    for (auto& [name, p] : kan.named_parameters())
      if (name.find("spline_weight") != std::string::npos) p.copy_(rand(p.shape(), DType::f64, &gen, -1, 1));
  }
  Generator gen(9);
  const Tensor x = rand({2, 128, 3}, DType::f64, &gen, -0.8, 0.6);  // (B, T, in): leading dims are flattened
  const Tensor before = kan.forward(x).detach();
  const Tensor g0 = kan.named_buffers()[0].second.clone(), g1 = kan.named_buffers()[1].second.clone();
  const int64_t n = train::update_kan_grids(kan, [&]() { kan.forward(x); }, 0.01);
  REQUIRE(n == 2);
  REQUIRE(max_abs_diff(kan.named_buffers()[0].second, g0) > 0.1);  // layer 0: grid moved to the batch range
  REQUIRE(max_abs_diff(kan.named_buffers()[1].second, g1) > 0.0);  // layer 1 saw its own input
  for (const auto& [name, m] : kan.named_modules())
    if (const auto* k = dynamic_cast<const nn::KANLayer*>(m)) REQUIRE_FALSE(k->captured_input().defined());
  // The refit keeps the function on the batch (same stated tolerance as the single-layer test, for
  // two layers in a row).
  const Tensor after = kan.forward(x).detach();
  const double rms = std::sqrt(mean(mul(before, before)).item());
  const double err = std::sqrt(mean(mul(sub(after, before), sub(after, before))).item());
  INFO("rms " << rms << " err " << err);
  REQUIRE(err < 0.04 * rms);
  // A model without KAN layers: nothing to do, and the forward is not even run.
  nn::Linear lin(3, 2);
  bool ran = false;
  REQUIRE(train::update_kan_grids(lin, [&]() { ran = true; }, 0.01) == 0);
  REQUIRE_FALSE(ran);
}

TEST_CASE("trainer: KAN grid updates during translation training, resumable bit for bit", "[trainer][kan]") {
  Json cfg = tiny_config(14);
  cfg["model"]["projection"] = {{"kind", "kan_bspline"}, {"options", {{"grid_size", 3}}}};
  cfg["train"]["kan_grid_update_every"] = 5;
  cfg["train"]["kan_grid_update_until"] = 10;
  const std::string a = fresh_dir("grid-a"), b = fresh_dir("grid-b");
  const auto r = knot::train::train_translation(cfg, a, false, quiet());
  REQUIRE(r.grid_updates == 2);  // before steps 1 and 6 (11 is past kan_grid_update_until)
  std::vector<int64_t> at;
  for (const auto& row : read_metrics(a))
    if (row.contains("grid_update")) {
      at.push_back(row["step"].get<int64_t>());
      REQUIRE(row["grid_update"].get<int64_t>() > 0);
    }
  REQUIRE(at == std::vector<int64_t>{1, 6});
  // The grids are buffers in the checkpoint: they left the initial uniform [-1, 1] grid.
  const auto st = knot::load_safetensors((fs::path(knot::train::latest_checkpoint(a)) / "model.safetensors").string());
  int64_t grids = 0;
  for (const auto& [name, t] : st.tensors)
    if (name.size() > 5 && name.substr(name.size() - 5) == ".grid") {
      ++grids;
      const auto g = t.to(knot::DType::f64).contiguous().to_vector<double>();
      REQUIRE(g.size() % 10 == 0);  // (in, G + 2k + 1) = (in, 10)
      REQUIRE((std::abs(g[3] + 1.0) > 1e-6 || std::abs(g[6] - 1.0) > 1e-6));
    }
  REQUIRE(grids > 0);
  // Killed at step 8, resumed: same weights, grids and metrics as the uninterrupted run.
  cfg["train"]["checkpoint_every"] = 4;
  cfg["train"]["val_every"] = 4;
  const std::string c = fresh_dir("grid-c");
  knot::train::train_translation(cfg, c, false, quiet());
  auto hooks = quiet();
  hooks.stop_after_steps = 9;  // latest checkpoint: step 8
  knot::train::train_translation(cfg, b, false, hooks);
  const Json saved = knot::models::load_json_file((fs::path(b) / "config.json").string());
  knot::train::train_translation(saved, b, true, quiet());
  REQUIRE(file_bytes((fs::path(c) / "checkpoints/step-000014/model.safetensors").string()) ==
          file_bytes((fs::path(b) / "checkpoints/step-000014/model.safetensors").string()));
  const auto mc = timeless(read_metrics(c)), mb = timeless(read_metrics(b));
  REQUIRE(mc.size() == mb.size());
  for (size_t i = 0; i < mc.size(); ++i) REQUIRE(mc[i].dump() == mb[i].dump());
  for (const auto& d : {a, b, c}) fs::remove_all(d);
}

TEST_CASE("trainer: logged steps report the fraction of B-spline inputs outside the grid", "[trainer][kan]") {
  // The count itself: a 2 -> 1 layer on efficient-kan's grid over [-1, 1]; the ends are inside.
  knot::nn::KANLinear layer(2, 1, knot::nn::KANLinearOptions{});
  const knot::Tensor x = knot::from_vector(std::vector<float>{-2.0f, 0.0f, 0.5f, 1.5f, 1.0f, -1.0f}, {3, 2});
  REQUIRE(layer.count_outside_grid(x) == std::pair<int64_t, int64_t>{2, 6});
  REQUIRE(knot::nn::make_kan_layer("chebyshev", 2, 1)->count_outside_grid(x) == std::pair<int64_t, int64_t>{0, 0});
  // In training: every logged row has it, in [0, 1]; a grid over [-10, 10] holds (nearly) every input
  // of the LayerNorm'd model, the default [-1, 1] grid misses a good part of them.
  auto fractions = [&](const Json& range) {
    Json cfg = tiny_config(6);
    cfg["model"]["projection"] = {{"kind", "kan_bspline"}, {"options", {{"grid_size", 3}, {"grid_range", range}}}};
    const std::string run = fresh_dir("oog");
    knot::train::train_translation(cfg, run, false, quiet());
    std::vector<double> f;
    for (const auto& row : read_metrics(run))
      if (row.contains("loss")) {
        REQUIRE(row.contains("out_of_grid_bspline"));
        f.push_back(row["out_of_grid_bspline"].get<double>());
        REQUIRE(f.back() >= 0.0);
        REQUIRE(f.back() <= 1.0);
      }
    fs::remove_all(run);
    return f;
  };
  const std::vector<double> narrow = fractions(Json::array({-1.0, 1.0})), wide = fractions(Json::array({-10.0, 10.0}));
  REQUIRE(narrow.size() == 2);  // steps 3 and 6
  REQUIRE(wide.size() == 2);
  INFO("narrow " << narrow[0] << " wide " << wide[0]);
  REQUIRE(narrow[0] > 0.05);
  REQUIRE(wide[0] < narrow[0] / 5);
  // No grid, no key.
  Json mlp = tiny_config(3);
  const std::string run = fresh_dir("oog-mlp");
  knot::train::train_translation(mlp, run, false, quiet());
  for (const auto& row : read_metrics(run)) REQUIRE_FALSE(row.contains("out_of_grid_bspline"));
  fs::remove_all(run);
}

TEST_CASE("trainer: kan_regularization on a model that cannot take it is an error before any write", "[trainer][kan]") {
  const std::string run = fresh_dir("kanreg");
  Json cfg = tiny_config(2);
  cfg["train"]["kan_regularization"] = 0.01;
  // MLP projections: no KAN layer at all.
  REQUIRE_THROWS_WITH(knot::train::train_translation(cfg, run, false, quiet()),
                      Catch::Contains("train.kan_regularization") && Catch::Contains("no KAN layer"));
  REQUIRE_FALSE(fs::exists(fs::path(run) / "config.json"));
  // Chebyshev KAN layers: no penalty defined for the basis.
  cfg["model"]["projection"] = {{"kind", "kan_chebyshev"}, {"options", {{"degree", 3}}}};
  REQUIRE_THROWS_WITH(knot::train::train_translation(cfg, run, false, quiet()),
                      Catch::Contains("train.kan_regularization") && Catch::Contains("kan_chebyshev"));
  REQUIRE_FALSE(fs::exists(fs::path(run) / "config.json"));
  // B-spline KAN layers: it trains, and the penalty is part of the loss that is differentiated.
  cfg["model"]["projection"] = {{"kind", "kan_bspline"}, {"options", {{"grid_size", 3}}}};
  auto first_loss = [&](const std::string& dir) {
    double seen = std::nan("");
    auto hooks = quiet();
    hooks.loss_hook = [&](int64_t, const knot::Tensor& l) {
      if (std::isnan(seen)) seen = l.item();  // the first micro-batch of step 1
      return l;
    };
    knot::train::train_translation(cfg, dir, false, hooks);
    return seen;
  };
  const double with = first_loss(run);
  cfg["train"]["kan_regularization"] = 0.0;
  const std::string run0 = fresh_dir("kanreg0");
  const double without = first_loss(run0);
  INFO("first loss with the penalty " << with << ", without " << without);
  REQUIRE(std::isfinite(with));
  REQUIRE(with > without);
  fs::remove_all(run);
  fs::remove_all(run0);
}

TEST_CASE("trainer: kan_reg_metric activations is pykan's penalty on the recorded rows, for any basis with edges",
          "[trainer][kan]") {
  using namespace knot;
  // The helper: each layer's penalty on the evenly spaced rows floor(j*N/R) of its recorded input.
  nn::KAN kan({3, 4, 2}, "chebyshev", {{"dtype", "f64"}, {"seed", 3}});
  Generator gen(4);
  const Tensor x = rand({10, 3}, DType::f64, &gen, -0.9, 0.9);
  for (const auto& [name, m] : kan.named_modules())
    if (const auto* k = dynamic_cast<const nn::KANLayer*>(m)) const_cast<nn::KANLayer*>(k)->set_capture_input(true);
  const Tensor h = kan.layer(0).forward(x).detach();
  kan.forward(x);
  const Tensor got = train::kan_activation_regularization_loss(kan, 4, 1.0, 0.5);
  const Tensor rows = from_vector(std::vector<int64_t>{0, 2, 5, 7}, {4});
  const double want = kan.layer(0).activation_regularization(index_select(x, 0, rows), 1.0, 0.5).item() +
                      kan.layer(1).activation_regularization(index_select(h, 0, rows), 1.0, 0.5).item();
  REQUIRE(got.item() == Approx(want).epsilon(1e-12));
  // A graph in the parameters: its gradient reaches the second layer's coefficients.
  got.backward();
  bool reached = false;
  for (const auto& [name, p] : kan.named_parameters())
    if (name.rfind("layers.1.", 0) == 0 && p.grad().defined()) reached |= sum(abs(p.grad())).item() > 0;
  REQUIRE(reached);
  // All rows when R >= N.
  const double all_rows = kan.layer(0).activation_regularization(x, 1.0, 0.5).item() +
                          kan.layer(1).activation_regularization(h, 1.0, 0.5).item();
  REQUIRE(train::kan_activation_regularization_loss(kan, 100, 1.0, 0.5).item() == Approx(all_rows).epsilon(1e-12));

  // In knot train: a Chebyshev model (no weights penalty) trains with it, and the penalty is in the loss.
  Json cfg = tiny_config(2);
  cfg["model"]["projection"] = {{"kind", "kan_chebyshev"}, {"options", {{"degree", 3}}}};
  cfg["train"]["kan_regularization"] = 0.01;
  cfg["train"]["kan_reg_metric"] = "activations";
  cfg["train"]["kan_reg_rows"] = 16;
  auto first_loss = [&](const std::string& dir) {
    double seen = std::nan("");
    auto hooks = quiet();
    hooks.loss_hook = [&](int64_t, const Tensor& l) {
      if (std::isnan(seen)) seen = l.item();
      return l;
    };
    const auto r = train::train_translation(cfg, dir, false, hooks);
    REQUIRE(r.steps == 2);
    return seen;
  };
  const std::string run = fresh_dir("actreg"), run0 = fresh_dir("actreg0");
  const double with = first_loss(run);
  cfg["train"]["kan_regularization"] = 0.0;
  const double without = first_loss(run0);
  INFO("first loss with the penalty " << with << ", without " << without);
  REQUIRE(std::isfinite(with));
  REQUIRE(with > without);
  // A basis without per-edge functions is an error naming the layer, before any write; so is a typo.
  const std::string bad = fresh_dir("actreg-bad");
  cfg["train"]["kan_regularization"] = 0.01;
  cfg["model"]["projection"] = {{"kind", "kan_rbf"}, {"options", {{"num_grids", 4}}}};
  REQUIRE_THROWS_WITH(train::train_translation(cfg, bad, false, quiet()),
                      Catch::Contains("train.kan_regularization") && Catch::Contains("kan_rbf") &&
                          Catch::Contains("activations penalty"));
  REQUIRE_FALSE(fs::exists(fs::path(bad) / "config.json"));
  cfg["train"]["kan_reg_metric"] = "activation";
  REQUIRE_THROWS_WITH(train::train_translation(cfg, bad, false, quiet()), Catch::Contains("kan_reg_metric"));
  for (const auto& d : {run, run0, bad}) fs::remove_all(d);
}

TEST_CASE("trainer: kan_grid_extend refines every B-spline grid during training, and resumes bit for bit",
          "[trainer][kan]") {
  Json cfg = tiny_config(8);
  cfg["model"]["projection"] = {{"kind", "kan_bspline"}, {"options", {{"grid_size", 3}}}};
  cfg["train"]["kan_grid_extend"] = Json::parse(R"([{"step": 3, "grid_size": 5}, {"step": 6, "grid_size": 8}])");
  cfg["train"]["checkpoint_every"] = 4;
  cfg["train"]["val_every"] = 4;
  const std::string a = fresh_dir("extend-a"), b = fresh_dir("extend-b");
  const auto r = knot::train::train_translation(cfg, a, false, quiet());
  REQUIRE(r.grid_extensions == 2);
  REQUIRE(r.skipped_steps == 0);
  std::vector<int64_t> at, sizes;
  for (const auto& row : read_metrics(a))
    if (row.contains("grid_extension")) {
      at.push_back(row["step"].get<int64_t>());
      sizes.push_back(row["grid_extension"].get<int64_t>());
      REQUIRE(row["layers"].get<int64_t>() > 0);
    }
  REQUIRE(at == std::vector<int64_t>{3, 6});
  REQUIRE(sizes == std::vector<int64_t>{5, 8});
  // The step-4 checkpoint holds G = 5 weights, the final one G = 8: (out, in, G + 3), (in, G + 7).
  auto spline_sizes = [](const std::string& dir) {
    std::set<int64_t> gs;
    for (const auto& [name, t] : knot::load_safetensors((fs::path(dir) / "model.safetensors").string()).tensors) {
      if (name.size() > 14 && name.substr(name.size() - 14) == ".spline_weight") gs.insert(t.size(2) - 3);
      if (name.size() > 5 && name.substr(name.size() - 5) == ".grid") gs.insert(t.size(1) - 7);
    }
    return gs;
  };
  REQUIRE(spline_sizes((fs::path(a) / "checkpoints/step-000004").string()) == std::set<int64_t>{5});
  REQUIRE(spline_sizes((fs::path(a) / "checkpoints/step-000008").string()) == std::set<int64_t>{8});
  // What eval, translate and export load (config.json still says grid_size 3): the weights' size.
  const auto loaded = knot::train::load_translation_run(a);
  int64_t kan_layers = 0;
  for (const auto& [name, m] : loaded.model->named_modules())
    if (const auto* k = dynamic_cast<const knot::nn::KANLinear*>(m)) {
      REQUIRE(k->options().grid_size == 8);
      ++kan_layers;
    }
  REQUIRE(kan_layers > 0);
  // Killed after step 5 (latest checkpoint: step 4, G = 5), resumed through the second extension:
  // the same final weights as the uninterrupted run.
  auto hooks = quiet();
  hooks.stop_after_steps = 5;
  knot::train::train_translation(cfg, b, false, hooks);
  const Json saved = knot::models::load_json_file((fs::path(b) / "config.json").string());
  const auto rb = knot::train::train_translation(saved, b, true, quiet());
  REQUIRE(rb.grid_extensions == 1);
  REQUIRE(file_bytes((fs::path(a) / "checkpoints/step-000008/model.safetensors").string()) ==
          file_bytes((fs::path(b) / "checkpoints/step-000008/model.safetensors").string()));
  REQUIRE(file_bytes((fs::path(a) / "checkpoints/step-000008/optimizer.safetensors").string()) ==
          file_bytes((fs::path(b) / "checkpoints/step-000008/optimizer.safetensors").string()));
  // Errors before any write: another basis, sizes that do not grow, a step past the end.
  const std::string bad = fresh_dir("extend-bad");
  Json c2 = cfg;
  c2["model"]["projection"] = {{"kind", "kan_chebyshev"}, {"options", {{"degree", 3}}}};
  REQUIRE_THROWS_WITH(knot::train::train_translation(c2, bad, false, quiet()),
                      Catch::Contains("kan_grid_extend") && Catch::Contains("kan_chebyshev"));
  c2 = cfg;
  c2["train"]["kan_grid_extend"] = Json::parse(R"([{"step": 3, "grid_size": 3}])");
  REQUIRE_THROWS_WITH(knot::train::train_translation(c2, bad, false, quiet()),
                      Catch::Contains("already has grid size 3"));
  c2["train"]["kan_grid_extend"] = Json::parse(R"([{"step": 3, "grid_size": 6}, {"step": 5, "grid_size": 4}])");
  REQUIRE_THROWS_WITH(knot::train::train_translation(c2, bad, false, quiet()), Catch::Contains("grid sizes must grow"));
  c2["train"]["kan_grid_extend"] = Json::parse(R"([{"step": 9, "grid_size": 6}])");
  REQUIRE_THROWS_WITH(knot::train::train_translation(c2, bad, false, quiet()), Catch::Contains("after the run's last step"));
  REQUIRE_FALSE(fs::exists(fs::path(bad) / "config.json"));
  for (const auto& d : {a, b, bad}) fs::remove_all(d);
}

TEST_CASE("translation: data.src_key and data.tgt_key read pairs stored under any keys", "[trainer]") {
  // The fixture's {"en", "de"} pairs rewritten as {"source", "target"} records with an extra field.
  const std::string dir = fresh_dir("keys");
  std::filesystem::create_directories(dir);
  for (const char* split : {"train", "val"}) {
    std::vector<Json> rows;
    for (const auto& r : knot::data::read_jsonl(fixture(std::string("tiny-") + split + ".jsonl")))
      rows.push_back(Json{{"source", r["en"]}, {"target", r["de"]}, {"id", rows.size()}});
    knot::data::write_jsonl(dir + "/" + split + ".jsonl", rows);
  }
  Json c = tiny_config(2);
  c["data"]["train"] = dir + "/train.jsonl";
  c["data"]["val"] = dir + "/val.jsonl";
  // Without the keys, the default "en" is missing: an error naming the file, line and key.
  REQUIRE_THROWS_WITH(knot::train::train_translation(c, dir + "/run0", false, quiet()),
                      Catch::Contains("train.jsonl:1") && Catch::Contains("'en'"));
  c["data"]["src_key"] = "source";
  c["data"]["tgt_key"] = "target";
  const auto r = knot::train::train_translation(c, dir + "/run", false, quiet());
  CHECK(r.steps == 2);
  // The same pairs as the {"en", "de"} files give the same first loss.
  const auto ref = knot::train::train_translation(tiny_config(2), dir + "/ref", false, quiet());
  auto first_loss = [](const std::vector<Json>& rows) {
    for (const auto& m : rows)
      if (m.contains("loss")) return m["loss"].get<double>();
    return -1.0;
  };
  const double loss = first_loss(read_metrics(dir + "/run"));
  CHECK(loss > 0);
  CHECK(loss == first_loss(read_metrics(dir + "/ref")));
  CHECK(knot::train::translation_keys(c["data"]) == std::pair<std::string, std::string>{"source", "target"});
  CHECK(knot::train::translation_keys(Json{{"src_lang", "fr"}}) == std::pair<std::string, std::string>{"fr", "de"});
  REQUIRE_THROWS_WITH(knot::train::translation_keys(Json{{"src_key", "x"}, {"tgt_key", "x"}}), Catch::Contains("both 'x'"));
  std::filesystem::remove_all(dir);
}
