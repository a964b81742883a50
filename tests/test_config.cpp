// The config reader and the schemas it records (core/config.h, train/config_schema.h): reads declare
// their keys, every task's schema lists every key with a meaning, a whole config is checked before
// any work, and old spellings keep working with a warning.
#include <algorithm>
#include <filesystem>
#include <functional>
#include <set>

#include "core/config.h"
#include "data/prepare.h"
#include "models/config.h"
#include "models/electra.h"
#include "tests/helpers.h"
#include "tests/train_helpers.h"
#include "train/config_schema.h"
#include "train/kan_fit.h"
#include "train/trainer.h"
#include "train/translation.h"

using namespace knot;
using config::Json;
namespace fs = std::filesystem;

namespace {
std::string repo_path(const std::string& rel) { return (fs::path(__FILE__).parent_path().parent_path() / rel).string(); }

const config::KeyInfo* find_key(const std::vector<config::KeyInfo>& keys, const std::string& path) {
  for (const auto& k : keys)
    if (k.path == path) return &k;
  return nullptr;
}
}  // namespace

TEST_CASE("config: reads declare their keys while a recorder lives", "[config]") {
  const Json j = {{"steps", 5}, {"optimizer", {{"beta1", 0.8}}}};
  {
    config::Reader r(j, "train");  // no recorder: reads work as always
    REQUIRE(r.get<int64_t>("steps", 1, "doc") == 5);
  }
  config::Recorder rec;
  config::Reader r(j, "train");
  REQUIRE(r.get<int64_t>("steps", 1, "optimizer steps") == 5);
  REQUIRE(r.get<double>("lr", 1e-3, "learning rate") == 1e-3);
  config::Reader o = r.child("optimizer", "AdamW settings");
  REQUIRE(o.context() == "train.optimizer");
  REQUIRE(o.get<double>("beta1", 0.9, "Adam beta1") == 0.8);
  o.finish();
  r.finish();
  const auto& keys = rec.keys();
  REQUIRE(keys.size() == 4);
  const auto* steps = find_key(keys, "train.steps");
  REQUIRE(steps);
  CHECK(steps->type == "integer");
  CHECK(steps->fallback == 1);
  CHECK(steps->value == 5);
  CHECK(steps->doc == "optimizer steps");
  const auto* lr = find_key(keys, "train.lr");
  REQUIRE(lr);
  CHECK(lr->type == "number");
  CHECK(lr->value == 1e-3);
  REQUIRE(find_key(keys, "train.optimizer"));
  CHECK(find_key(keys, "train.optimizer")->type == "object");
  REQUIRE(find_key(keys, "train.optimizer.beta1"));
  CHECK(find_key(keys, "train.optimizer.beta1")->value == 0.8);

  // The top level ("config") has no prefix; an alias places a model reader under "model".
  config::Recorder inner;  // the innermost recorder records
  config::Reader top(Json{{"seed", 3}}, "config");
  top.get<int64_t>("seed", 1, "seed");
  {
    config::ContextAlias as_model({"encoder_decoder"}, "model");
    config::Reader m(Json::object(), "encoder_decoder");
    m.get<int64_t>("num_heads", 8, "heads");
    config::Reader p(Json::object(), "encoder_decoder.projections");
    p.get<Json>("ffn", Json(), "ffn");
  }
  config::Reader after(Json::object(), "encoder_decoder");  // the alias ended with its scope
  after.get<int64_t>("num_layers", 2, "layers");
  REQUIRE(find_key(inner.keys(), "seed"));
  REQUIRE(find_key(inner.keys(), "model.num_heads"));
  REQUIRE(find_key(inner.keys(), "model.projections.ffn"));
  REQUIRE(find_key(inner.keys(), "encoder_decoder.num_layers"));
  REQUIRE(rec.keys().size() == 4);  // the outer recorder saw none of these
}

TEST_CASE("config: a child that is not an object, and required keys, are errors naming the key", "[config]") {
  config::Reader r(Json{{"optimizer", 3}}, "train");
  REQUIRE_THROWS_WITH(r.child("optimizer"), Catch::Contains("config 'train': key 'optimizer' must be an object"));
  REQUIRE_THROWS_WITH(r.require<std::string>("kind"), Catch::Contains("config 'train': missing required key 'kind'"));
}

TEST_CASE("config: renamed keys keep working with a warning, and both spellings at once are an error", "[config]") {
  config::Reader r(Json{{"file", "t.json"}}, "tokenizer");
  r.renamed("file", "path");
  REQUIRE(r.get<std::string>("path", "") == "t.json");
  r.finish();  // the old key counts as known
  config::Reader both(Json{{"file", "a"}, {"path", "b"}}, "tokenizer");
  REQUIRE_THROWS_WITH(both.renamed("file", "path"),
                      Catch::Contains("keys 'file' and 'path' are the same setting") && Catch::Contains("keep 'path'"));
}

TEST_CASE("config: reading_done stops only under a stopping recorder", "[config]") {
  REQUIRE_NOTHROW(config::reading_done());
  {
    config::Recorder listening;
    REQUIRE_NOTHROW(config::reading_done());
  }
  config::Recorder stopping(/*stop_at_reading_done=*/true);
  bool stopped = false;
  try {
    config::reading_done();
  } catch (const config::ReadingDone&) {
    stopped = true;
  }
  REQUIRE(stopped);
}

TEST_CASE("config schema: every task lists every key it reads, each with a type and a meaning", "[config]") {
  for (const std::string& name : train::schema_names()) {
    INFO(name);
    const auto keys = train::config_schema(name);
    REQUIRE(keys.size() >= 4);
    std::set<std::string> paths;
    for (const auto& k : keys) {
      INFO(k.path);
      CHECK_FALSE(k.doc.empty());
      CHECK_FALSE(k.type.empty());
      CHECK(paths.insert(k.path).second);
    }
    // Every nested key sits under a key of the same schema (a read recorded under a stray context,
    // such as a model reader outside its task's "model" alias, would not). The "train" schema's keys sit
    // under its own name.
    if (name != "bases")
      for (const auto& k : keys) {
        INFO(k.path);
        const size_t dot = k.path.rfind('.');
        if (dot != std::string::npos && k.path.substr(0, dot) != name) CHECK(paths.count(k.path.substr(0, dot)));
      }
  }
  const auto tr = train::config_schema("translation");
  for (const char* p : {"seed", "data.batch_size", "tokenizer.path", "translation.label_smoothing", "eval.beam",
                        "train.steps", "train.optimizer.beta1", "train.schedule.warmup_steps", "model.num_heads",
                        "model.projection", "model.projections.ffn"}) {
    INFO(p);
    CHECK(find_key(tr, p));
  }
  CHECK(find_key(tr, "model")->required);
  CHECK(find_key(tr, "model")->type == "object");
  CHECK(find_key(train::config_schema("lm"), "model.moe.num_experts"));
  CHECK(find_key(train::config_schema("electra"), "model.discriminator.hidden_size"));
  CHECK(find_key(train::config_schema("electra"), "electra.mask_prob"));
  CHECK(find_key(train::config_schema("sentiment"), "data.eval_batch_size"));
  const auto fit = train::config_schema("fit");
  CHECK(find_key(fit, "train.kan_grid_update_every"));
  CHECK(find_key(fit, "model.projection"));
  CHECK_FALSE(find_key(fit, "train.lamb"));  // old spellings are not part of the schema
  const auto bases = train::config_schema("bases");
  CHECK(find_key(bases, "kan_bspline.grid_size"));
  CHECK(find_key(bases, "kan_chebyshev.degree"));
  CHECK(find_key(bases, "kan_rational.groups"));
  CHECK(find_key(bases, "kan_rbf.init"));
  REQUIRE_THROWS_WITH(train::config_schema("bert"), Catch::Contains("unknown name 'bert'") && Catch::Contains("fit"));
  // The markdown table has one row per key.
  const std::string md = train::schema_table(fit, true);
  CHECK(std::count(md.begin(), md.end(), '\n') == static_cast<long>(fit.size()) + 2);
}

TEST_CASE("config check: every shipped task config passes, and each of its keys is one the task reads", "[config]") {
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(repo_path("configs"))) {
    if (entry.path().extension() != ".json") continue;
    const Json cfg = config::load_json_file(entry.path().string());
    if (!cfg.contains("task")) continue;  // a model config (configs/electra-small-mlp.json, gpt2.json)
    INFO(entry.path().filename().string());
    std::vector<config::KeyInfo> keys;
    REQUIRE_NOTHROW(keys = train::check_config(cfg));
    std::set<std::string> paths;
    for (const auto& k : keys) paths.insert(k.path);
    // Every leaf the file sets is a declared key (or lies inside one: a list, a projection spec, basis options).
    std::function<void(const Json&, const std::string&)> walk = [&](const Json& j, const std::string& prefix) {
      for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string path = prefix.empty() ? it.key() : prefix + "." + it.key();
        if (paths.count(path) && !(it->is_object() && !it->empty() && paths.count(path + "." + it->begin().key())))
          continue;  // declared as a whole
        if (it->is_object()) {
          walk(*it, path);
          continue;
        }
        INFO(path);
        CHECK(paths.count(path));
      }
    };
    walk(cfg, "");
    ++checked;
  }
  REQUIRE(checked >= 20);
}

TEST_CASE("config check: a typo anywhere is found before any work, model and basis options included", "[config]") {
  // Before: a typo in the model's basis options surfaced only after the BPE tokenizer was trained.
  models::Json cfg = test::tiny_translation_config(2);
  cfg["run_dir"] = test::fresh_run_dir("config", "typo");
  cfg["model"]["projection"] = {{"kind", "kan_bspline"}, {"options", {{"grid_sise", 4}}}};
  std::vector<std::string> lines;
  train::TrainerHooks hooks = test::quiet_hooks();
  hooks.log = [&](const std::string& l) { lines.push_back(l); };
  REQUIRE_THROWS_WITH(train::train_translation(cfg, "", false, hooks),
                      Catch::Contains("unknown key 'grid_sise'; did you mean 'grid_size'?"));
  REQUIRE(lines.empty());  // no tokenizer trained, nothing read
  REQUIRE_FALSE(fs::exists(cfg["run_dir"].get<std::string>()));
  REQUIRE_THROWS_WITH(train::check_config(cfg), Catch::Contains("grid_sise"));
  cfg["model"]["projection"]["options"].erase("grid_sise");
  cfg["eval"]["beam"] = 0;
  REQUIRE_THROWS_WITH(train::check_config(cfg), Catch::Contains("config 'eval'") && Catch::Contains("'beam'"));
  cfg["eval"]["beam"] = 2;
  REQUIRE_NOTHROW(train::check_config(cfg));
  REQUIRE_FALSE(fs::exists(cfg["run_dir"].get<std::string>()));
  cfg["task"] = "bert";
  REQUIRE_THROWS_WITH(train::check_config(cfg), Catch::Contains("known tasks"));
}

TEST_CASE("config: knot fit's old spellings (pykan's keys, model.basis/options) train the same run, written anew",
          "[config][fit]") {
  const std::string base = test::fresh_run_dir("config", "fit");
  const Json now = Json::parse(R"({
    "task": "fit",
    "data": {"generate": {"function": "exp_sin_sq", "n_train": 100, "n_test": 50, "seed": 3}},
    "model": {"widths": [2, 3, 1], "projection": {"kind": "kan_bspline", "options": {"grid_size": 4}}},
    "train": {"optimizer": "adam", "steps": 6, "kan_grid_update_every": 2, "kan_grid_update_until": 3,
              "kan_regularization": 0.01, "kan_reg_a": 1.0, "kan_reg_e": 2.0, "kan_reg_metric": "weights",
              "log_every": 100}})");
  const Json old = Json::parse(R"({
    "task": "fit",
    "data": {"generate": {"function": "exp_sin_sq", "n_train": 100, "n_test": 50, "seed": 3}},
    "model": {"widths": [2, 3, 1], "basis": "bspline", "options": {"grid_size": 4}},
    "train": {"optimizer": "adam", "steps": 6, "update_grid_every": 2, "stop_grid_update_step": 4,
              "lamb": 0.01, "lamb_l1": 1.0, "lamb_entropy": 2.0, "reg_metric": "weights", "log_every": 100}})");
  Json a = now, b = old;
  a["run_dir"] = base + "/now";
  b["run_dir"] = base + "/old";
  const auto ra = train::run_fit(a, [](const std::string&) {});
  const auto rb = train::run_fit(b, [](const std::string&) {});
  REQUIRE(ra.test_rmse == rb.test_rmse);
  REQUIRE(ra.train_rmse == rb.train_rmse);
  // The old run's config.json is written in today's spelling, and reruns to the same result.
  const Json saved = config::load_json_file(base + "/old/config.json");
  CHECK(saved["model"]["projection"]["kind"] == "kan_bspline");
  CHECK_FALSE(saved["model"].contains("basis"));
  CHECK(saved["train"]["kan_grid_update_until"] == 3);
  CHECK(saved["train"]["kan_regularization"] == 0.01);
  CHECK_FALSE(saved["train"].contains("lamb"));
  Json again = saved;
  again["run_dir"] = base + "/again";
  REQUIRE(train::run_fit(again, [](const std::string&) {}).test_rmse == rb.test_rmse);
  // predict reads a run written with the old spelling (config.json of an earlier release).
  Json legacy = config::load_json_file(base + "/now/config.json");
  legacy["model"] = {{"widths", {2, 3, 1}}, {"basis", "bspline"}, {"options", legacy["model"]["projection"]["options"]}};
  config::save_json_file(base + "/now/config.json", legacy);
  REQUIRE(train::run_predict(base + "/now", base + "/now/test.csv", base + "/pred.csv") == 50);
  // Both spellings at once are an error naming both.
  Json mixed = now;
  mixed["run_dir"] = base + "/mixed";
  mixed["train"]["lamb"] = 0.1;
  REQUIRE_THROWS_WITH(train::run_fit(mixed, [](const std::string&) {}),
                      Catch::Contains("'lamb' and 'kan_regularization' are the same setting"));
  mixed = now;
  mixed["run_dir"] = base + "/mixed";
  mixed["model"]["basis"] = "chebyshev";
  REQUIRE_THROWS_WITH(train::run_fit(mixed, [](const std::string&) {}), Catch::Contains("keep 'projection'"));
  REQUIRE_FALSE(fs::exists(base + "/mixed"));
  fs::remove_all(base);
}

TEST_CASE("config: the tokenizer's file is tokenizer.path in every task (file and vocab still read)", "[config]") {
  Json tr = test::tiny_translation_config(2);
  tr["tokenizer"] = {{"file", "t.json"}};
  const auto keys = train::check_config(tr);
  REQUIRE(find_key(keys, "tokenizer.path"));
  CHECK(find_key(keys, "tokenizer.path")->value == "t.json");
  Json el = test::tiny_electra_config(2);
  const Json path = el["tokenizer"]["path"];
  el["tokenizer"] = {{"vocab", path}};
  REQUIRE(find_key(train::check_config(el), "tokenizer.path")->value == path);
  el["tokenizer"]["path"] = path;
  REQUIRE_THROWS_WITH(train::check_config(el), Catch::Contains("'vocab' and 'path' are the same setting"));
}

TEST_CASE("config: knot eval's defaults are the trainer's eval object, checked the same way", "[config]") {
  config::Reader ok(Json{{"beam", 4}}, "eval");
  const train::EvalDefaults d = train::read_eval_defaults(ok);
  CHECK(d.beam == 4);
  CHECK(d.length_penalty == 0.6);
  CHECK(d.batch_size == 64);
  CHECK(d.samples == 5);
  config::Reader bad(Json{{"samples", -1}}, "eval");
  REQUIRE_THROWS_WITH(train::read_eval_defaults(bad), Catch::Contains("config 'eval'"));
  config::Reader typo(Json{{"bean", 2}}, "eval");
  REQUIRE_THROWS_WITH(train::read_eval_defaults(typo), Catch::Contains("did you mean 'beam'?"));
}

TEST_CASE("config: ELECTRA's KAN sites are model.projection(s) as elsewhere, and checkpoints hash as before",
          "[config][electra]") {
  const Json base = config::load_json_file(repo_path("configs/electra-tiny-mlp.json"));
  Json old_form = base, new_form = base;
  old_form.erase("projection");
  old_form["kan"] = {{"kind", "kan_bspline"}, {"options", {{"grid_size", 5}}}, {"attention", true}, {"ffn", true},
                     {"heads", false}};
  new_form["projection"] = {{"kind", "kan_bspline"}, {"options", {{"grid_size", 5}}}};
  new_form["projections"] = {{"heads", "mlp"}};
  const auto a = models::ElectraConfig::from_json(old_form), b = models::ElectraConfig::from_json(new_form);
  CHECK(a.kan_attention == b.kan_attention);
  CHECK(a.kan_ffn == b.kan_ffn);
  CHECK(a.kan_heads == b.kan_heads);
  CHECK_FALSE(b.kan_heads);
  REQUIRE(a.to_json() == b.to_json());
  CHECK_FALSE(b.to_json().contains("kan"));
  // A checkpoint's model_config_sha256 is over the spelling it was written with before: the same for both.
  CHECK(a.legacy_json() == b.legacy_json());
  CHECK(a.legacy_json().contains("kan"));
  CHECK(train::model_config_hash(a.to_json()) == train::model_config_hash(old_form));
  CHECK(train::model_config_hash(b.to_json()) == data::sha256_hex(a.legacy_json().dump()));  // the hash of before
  // The to_json of a config round-trips, and the MLP model writes no KAN keys at all.
  REQUIRE(models::ElectraConfig::from_json(b.to_json()).to_json() == b.to_json());
  const Json mlp = models::ElectraConfig::from_json(base).to_json();
  CHECK_FALSE(mlp.contains("projection"));
  CHECK_FALSE(mlp.contains("projections"));
  // ELECTRA's KAN sites share one spec; both spellings at once are an error.
  Json two = new_form;
  two["projections"] = {{"ffn", "kan_chebyshev"}};
  REQUIRE_THROWS_WITH(models::ElectraConfig::from_json(two), Catch::Contains("share one layer kind and options"));
  Json both = old_form;
  both["projection"] = "mlp";
  REQUIRE_THROWS_WITH(models::ElectraConfig::from_json(both), Catch::Contains("keep 'projection'/'projections'"));
}

TEST_CASE("config: a resolved config writes every key in effect and reads back to itself", "[config]") {
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(repo_path("configs"))) {
    if (entry.path().extension() != ".json") continue;
    const Json cfg = config::load_json_file(entry.path().string());
    if (!cfg.contains("task")) continue;
    INFO(entry.path().filename().string());
    const Json resolved = config::resolved_config(train::check_config(cfg));
    // Every key the file sets keeps its value (the file's own settings win over defaults).
    std::function<void(const Json&, const Json&, const std::string&)> same = [&](const Json& a, const Json& b,
                                                                               const std::string& where) {
      for (auto it = a.begin(); it != a.end(); ++it) {
        INFO(where + it.key());
        if (cfg.value("task", "") == "sentiment" && where == "model.") continue;  // a patch over ELECTRA's defaults
        REQUIRE(b.contains(it.key()));
        if (it->is_object() && b[it.key()].is_object())
          same(*it, b[it.key()], where + it.key() + ".");
        else
          CHECK(b[it.key()] == *it);
      }
    };
    same(cfg, resolved, "");
    // Read again, it resolves to itself; and it is a larger config than the file (the defaults).
    CHECK(config::resolved_config(train::check_config(resolved)) == resolved);
    CHECK(resolved.dump().size() > cfg.dump().size());
    ++checked;
  }
  REQUIRE(checked >= 20);
  // Defaults are written out; keys the task fills in (the vocabulary from the tokenizer) are not.
  const Json tr = config::resolved_config(train::check_config(test::tiny_translation_config(2)));
  CHECK(tr["train"]["optimizer"]["beta1"] == 0.9);
  CHECK(tr["model"]["ffn_activation"] == "relu");
  CHECK(tr["eval"]["length_penalty"] == 0.6);
  CHECK_FALSE(tr["model"].contains("vocab_src_size"));
  CHECK_FALSE(tr["model"].contains("pad_tgt_idx"));
  // A model config is not a task config: the error says what it is.
  REQUIRE_THROWS_WITH(train::check_config(config::load_json_file(repo_path("configs/electra-small-mlp.json"))),
                      Catch::Contains("this is a model config (\"model\": \"electra\")"));
}

TEST_CASE("config: knot fit's kan_grid_update_until 0 means the whole run, as in the trainer", "[config][fit]") {
  const std::string base = test::fresh_run_dir("config", "fit-until");
  auto fit = [&](const std::string& name, const Json& train) {
    Json c = Json::parse(R"({
      "task": "fit",
      "data": {"generate": {"function": "product", "n_train": 80, "n_test": 40, "seed": 2}},
      "model": {"widths": [2, 2, 1], "projection": {"kind": "kan_bspline", "options": {"grid_size": 3}}},
      "train": {"optimizer": "adam", "steps": 4, "kan_grid_update_every": 1, "log_every": 100}})");
    c["run_dir"] = base + "/" + name;
    c["train"].update(train);
    return train::run_fit(c, [](const std::string&) {}).test_rmse;
  };
  const double whole = fit("until0", {{"kan_grid_update_until", 0}});
  CHECK(whole == fit("until100", {{"kan_grid_update_until", 100}}));  // every step, like a limit past the end
  CHECK(whole != fit("until1", {{"kan_grid_update_until", 1}}));      // only before step 1
  // pykan's stop_grid_update_step 1 meant no update at all: it still does.
  const double none = fit("every0", {{"kan_grid_update_every", 0}});
  Json old_train = {{"stop_grid_update_step", 1}};
  CHECK(fit("stop1", old_train) == none);
  const Json saved = config::load_json_file(base + "/stop1/config.json");
  CHECK(saved["train"]["kan_grid_update_every"] == 0);
  CHECK_FALSE(saved["train"].contains("stop_grid_update_step"));
  Json bad = {{"kan_grid_update_until", -1}};
  REQUIRE_THROWS_WITH(fit("bad", bad), Catch::Contains("must be >= 0"));
  fs::remove_all(base);
}
