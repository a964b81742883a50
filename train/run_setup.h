// What the `knot train` tasks (translation, electra, lm) share around their own work: the start of
// a run (prepare_run: the rank-0 log and the config's top-level keys; start_run: once the whole
// config is read) and the reading of a trained run for eval, translate and generate.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/config.h"
#include "nn/module.h"
#include "train/trainer.h"

namespace knot::train {

struct PreparedRun {
  std::string task;
  uint64_t seed = 1;
  std::string run_dir;
  std::function<void(const std::string&)> log;  // hooks.log, else stderr on rank 0 alone
  // What the run directory's config.json holds: `cfg` with the task, seed, run directory and the
  // resolved model config (vocabulary sizes and the like filled in by the task).
  config::Json resolved(const config::Json& cfg, const config::Json& model) const;
};
// Reads the top level's common keys: "task" (must be `task`), "seed", "run_dir" (`run_dir_arg`,
// when not empty, wins) and "description".
PreparedRun prepare_run(config::Reader& top, const std::string& task, const std::string& default_run_dir,
                        const std::string& run_dir_arg, const TrainerHooks& hooks);
// Once the whole config is read and checked (after config::reading_done()): the run's thread count,
// and a fresh run's directory must not hold checkpoints yet (run_trainer checks again, under the
// run's lock; this early check keeps a refused run from reading data or training a tokenizer).
void start_run(const PreparedRun& run, const TrainerConfig& trainer, bool resume);

// A trained run's config.json, whose task must be one of `tasks` (`what` names them in errors: "a
// translation run"), with a "model" object.
config::Json load_run_config(const std::string& run_dir, const std::vector<std::string>& tasks, const std::string& what);
// Loads run_dir's latest checkpoint into `model` (eval mode after), checking that it was written
// for `model_config`; returns the checkpoint's directory.
std::string load_latest_weights(const std::string& run_dir, nn::Module& model, const config::Json& model_config);

}  // namespace knot::train
