// Task schemas and whole-config checks from the recorded reads (see config_schema.h).
#include "train/config_schema.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>

#include "core/error.h"
#include "nn/basis_registry.h"
#include "train/electra_pretrain.h"
#include "train/finetune.h"
#include "train/kan_fit.h"
#include "train/language_model.h"
#include "train/translation.h"

namespace knot::train {
namespace {

using config::Json;
using config::KeyInfo;

// Runs `read` under a recorder and returns what it read. A task's entry point stops at
// config::reading_done() (ReadingDone); `stops` says whether it must.
std::vector<KeyInfo> record(const std::function<void()>& read, bool stops, const std::string& what) {
  config::Recorder rec(/*stop_at_reading_done=*/true);
  try {
    read();
  } catch (const config::ReadingDone&) {
    return rec.keys();
  }
  KNOT_CHECK(!stops, "config: the {} entry point ran past config::reading_done() (a bug: it must stop there)", what);
  return rec.keys();
}

// A task's schema leaves out the basis options that its model check read ("kan_bspline.grid_size"):
// they depend on the basis chosen and are listed once, by the "bases" schema.
std::vector<KeyInfo> without_basis_options(std::vector<KeyInfo> keys) {
  keys.erase(std::remove_if(keys.begin(), keys.end(), [](const KeyInfo& k) { return k.path.rfind("kan_", 0) == 0; }),
             keys.end());
  return keys;
}

std::vector<KeyInfo> read_task(const Json& cfg_in) {
  KNOT_CHECK(cfg_in.is_object(), "config: expected a JSON object, got {}", config::type_name(cfg_in));
  const auto task_it = cfg_in.find("task");
  KNOT_CHECK(task_it == cfg_in.end() || task_it->is_string(), "config: key 'task' must be a string, got {}",
             task_it == cfg_in.end() ? "" : task_it->dump());
  // A model config (configs/electra-small-mlp.json: "model": "electra" at the top) is not a task's.
  KNOT_CHECK(task_it != cfg_in.end() || !cfg_in.contains("model") || !cfg_in["model"].is_string(),
             "config: this is a model config (\"model\": {}), not a task config with a \"task\" key; knot params "
             "CONFIG reads it, and a task config takes it as its \"model\" object",
             cfg_in["model"].dump());
  const std::string task = cfg_in.value("task", "translation");
  Json cfg = cfg_in;
  TrainerHooks quiet;
  quiet.log = [](const std::string&) {};
  if (task == "translation")
    return without_basis_options(record([&] { train_translation(cfg, "", false, quiet); }, true, task));
  if (task == "electra")
    return without_basis_options(record([&] { train_electra(cfg, "", false, quiet); }, true, task));
  if (task == "lm")
    return without_basis_options(record([&] { train_language_model(cfg, "", false, quiet); }, true, task));
  if (task == "sentiment") {
    // A fine-tuning config's model is a patch over the pretraining run's model config; checked
    // here over ELECTRA's defaults, with the task's two labels, as knot finetune --from-scratch would.
    if (cfg.contains("model") && cfg["model"].is_object()) {
      if (!cfg["model"].contains("num_labels")) cfg["model"]["num_labels"] = 2;
      if (!cfg["model"].contains("model")) cfg["model"]["model"] = "electra";
    }
    return without_basis_options(record([&] { (void)read_sentiment_config(cfg); }, false, task));
  }
  if (task == "fit")  // knot fit names its top level "fit" in errors
    return without_basis_options(record(
        [&] {
          config::ContextAlias top({"fit"}, "");
          (void)run_fit(cfg, [](const std::string&) {});
        },
        true, task));
  KNOT_FAIL("config: key 'task' is '{}'; known tasks: translation, electra, lm (knot train), sentiment (knot "
            "finetune), fit (knot fit)",
            task);
}

}  // namespace

std::vector<std::string> schema_names() { return {"translation", "electra", "lm", "sentiment", "fit", "train", "bases"}; }

std::vector<KeyInfo> config_schema(const std::string& name) {
  if (name == "train") return record([] { (void)TrainerConfig::from_json(Json::object()); }, false, name);
  if (name == "bases") {
    std::vector<KeyInfo> all;
    for (const std::string& b : nn::basis_names()) {
      const auto keys = record([&] { (void)nn::make_kan_layer(b, 1, 1); }, false, b);
      all.insert(all.end(), keys.begin(), keys.end());
    }
    return all;
  }
  // The smallest config of each task: every other key takes its default.
  if (name == "translation" || name == "electra" || name == "lm")
    return read_task({{"task", name}, {"model", Json::object()}});
  if (name == "sentiment") return read_task({{"task", name}, {"model", Json::object()}});
  if (name == "fit")
    return read_task({{"task", "fit"}, {"model", {{"widths", {1, 1}}}}, {"data", {{"train", "train.csv"}}}});
  KNOT_FAIL("config --schema: unknown name '{}' (known: {})", name, fmt::join(schema_names(), ", "));
}

std::vector<KeyInfo> check_config(const Json& cfg) { return read_task(cfg); }

std::string schema_table(const std::vector<KeyInfo>& keys, bool markdown) {
  auto default_text = [](const KeyInfo& k) {
    if (k.required) return std::string("(required)");
    return k.fallback.dump(-1, ' ', false, Json::error_handler_t::replace);
  };
  std::string out;
  if (markdown) {
    auto cell = [](std::string s) {
      std::string r;
      for (char c : s) r += c == '|' ? std::string("\\|") : std::string(1, c);
      return r;
    };
    out += "| key | type | default | meaning |\n| --- | --- | --- | --- |\n";
    for (const KeyInfo& k : keys)
      out += fmt::format("| `{}` | {} | `{}` | {} |\n", k.path, k.type, cell(default_text(k)), cell(k.doc));
    return out;
  }
  size_t wk = 3, wt = 4, wd = 7;
  for (const KeyInfo& k : keys) {
    wk = std::max(wk, k.path.size());
    wt = std::max(wt, k.type.size());
    wd = std::max(wd, std::min<size_t>(default_text(k).size(), 24));
  }
  out += fmt::format("{:<{}}  {:<{}}  {:<{}}  {}\n", "key", wk, "type", wt, "default", wd, "meaning");
  for (const KeyInfo& k : keys)
    out += fmt::format("{:<{}}  {:<{}}  {:<{}}  {}\n", k.path, wk, k.type, wt, default_text(k), wd, k.doc);
  return out;
}

}  // namespace knot::train
