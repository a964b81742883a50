// The shared start of the knot train tasks and the reading of trained runs (see run_setup.h).
#include "train/run_setup.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "core/runtime.h"
#include "dist/comm.h"
#include "train/checkpoint.h"

namespace fs = std::filesystem;

namespace knot::train {

PreparedRun prepare_run(config::Reader& top, const std::string& task, const std::string& default_run_dir,
                        const std::string& run_dir_arg, const TrainerHooks& hooks) {
  PreparedRun run;
  run.task = task;
  run.log = hooks.log ? hooks.log : [](const std::string& s) {
    if (dist::Comm::world().rank() == 0) std::fprintf(stderr, "%s\n", s.c_str());  // rank 0 alone speaks
  };
  const std::string t = top.get<std::string>(
      "task", task, "the task (knot train: translation, electra or lm; knot finetune: sentiment; knot fit: fit)");
  KNOT_CHECK(t == task, "config: key 'task' is '{}', expected '{}'", t, task);
  run.seed = static_cast<uint64_t>(
      top.get<int64_t>("seed", 1, "seeds initialisation, batch order and dropout: a run is reproducible"));
  run.run_dir = top.get<std::string>("run_dir", default_run_dir, "the run directory (knot train --run overrides it)");
  if (!run_dir_arg.empty()) run.run_dir = run_dir_arg;
  top.get<std::string>("description", "", "free text, kept with the run");
  return run;
}

config::Json PreparedRun::resolved(const config::Json& cfg, const config::Json& model) const {
  config::Json r = cfg;
  r["task"] = task;
  r["seed"] = seed;
  r["run_dir"] = run_dir;
  r["model"] = model;
  return r;
}

void start_run(const PreparedRun& run, const TrainerConfig& trainer, bool resume) {
  apply_thread_setting(trainer.threads, "train.threads");
  if (!resume)
    KNOT_CHECK(latest_checkpoint(run.run_dir).empty(),
               "train: '{}' already holds checkpoints; continue it with --resume or choose another run directory",
               run.run_dir);
}

config::Json load_run_config(const std::string& run_dir, const std::vector<std::string>& tasks, const std::string& what) {
  const fs::path cfg_path = fs::path(run_dir) / "config.json";
  KNOT_CHECK(fs::exists(cfg_path), "'{}' has no config.json; is it a `knot train` run directory?", run_dir);
  config::Json cfg = config::load_json_file(cfg_path.string());
  const std::string task = cfg.is_object() && cfg.contains("task") && cfg["task"].is_string() ? cfg["task"].get<std::string>() : "";
  KNOT_CHECK(std::find(tasks.begin(), tasks.end(), task) != tasks.end(), "'{}' is not {} (task '{}', expected {})",
             run_dir, what, task, fmt::join(tasks, " or "));
  KNOT_CHECK(cfg.contains("model") && cfg["model"].is_object(), "'{}': config.json has no 'model' object",
             cfg_path.string());
  return cfg;
}

std::string load_latest_weights(const std::string& run_dir, nn::Module& model, const config::Json& model_config) {
  const std::string checkpoint = latest_checkpoint(run_dir);
  KNOT_CHECK(!checkpoint.empty(), "'{}' has no checkpoint yet (checkpoints/latest is missing)", run_dir);
  load_checkpoint(checkpoint, model, nullptr, model_config_hash(model_config));
  model.eval();
  return checkpoint;
}

}  // namespace knot::train
