// `knot train CONFIG [key.sub=value ...] [--run DIR]` / `knot train --resume DIR [key.sub=value ...]`, and the registration of the
// train/translate/eval group (translate.cpp, eval.cpp).
#include <fmt/format.h>

#include <filesystem>

#include "dist/comm.h"
#include "models/config.h"
#include "tools/commands.h"
#include "train/electra_pretrain.h"
#include "train/language_model.h"
#include "train/translation.h"

namespace knot::tools {

void add_translate_command(CLI::App& app);  // tools/translate.cpp
void add_eval_command(CLI::App& app);       // tools/eval.cpp
void add_generate_command(CLI::App& app);   // tools/generate.cpp

namespace {

void add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a model from a JSON config (task: translation, electra or lm)");
  auto config = std::make_shared<std::string>();
  auto overrides = std::make_shared<std::vector<std::string>>();
  auto resume = std::make_shared<std::string>(), run = std::make_shared<std::string>();
  cmd->add_option("args", *overrides,
                  "CONFIG (a JSON file, e.g. configs/translate-kan-small.json or configs/pretrain-electra-tiny.json; "
                  "left out with --resume), then config overrides key.sub=value (Hydra style), e.g. train.steps=2000 "
                  "model.embedding_dim=96; keys the config file leaves out may be set too (Hydra's '+key=value' is accepted), unknown keys are errors naming the key");
  cmd->add_option("--resume", *resume,
                  "Continue the run in DIR from its latest checkpoint (its config.json, plus any overrides); the "
                  "result is bit-identical to a run that was never interrupted (same machine, same threads)")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--run", *run, "Run directory (default: the config's run_dir)");
  cmd->footer(
      "The task comes from the config's \"task\" key: \"translation\" (kanformer EN->DE, train/translation.h) or\n"
      "\"electra\" (ELECTRA pretraining: generator MLM + 50 x replaced-token detection, train/electra_pretrain.h,\n"
      "docs/training.md) or \"lm\" (a decoder-only language model on any text, train/language_model.h,\n"
      "docs/language-models.md). The run directory receives config.json (resolved), the tokenizer (tokenizer.json for\n"
      "translation and lm, vocab.txt for electra), metrics.jsonl (one JSON object per logged step and per validation)\n"
      "and checkpoints/step-N/{model,optimizer}.safetensors + trainer_state.json with checkpoints/latest.\n"
      "A live progress line (step/total, epoch, loss, lr, tokens/s, ETA) goes to stderr.\n"
      "CPU threads: KNOT_NUM_THREADS if set, else train.threads if > 0, else all cores (at most 4 x the\n"
      "hardware threads; a bad value is an error).\n"
      "Several processes or machines: start it with mpirun -np N (or srun); the ranks train the model one process\n"
      "would, each on its rows of every batch; train.zero=1 shards the AdamW moments (ZeRO-1); docs/distributed.md.\n"
      "Examples:\n"
      "  knot train configs/translate-kan-small.json\n"
      "  knot train configs/translate-mlp-small.json train.steps=500 --run runs/mlp-short\n"
      "  knot train configs/pretrain-electra-tiny.json\n"
      "  knot train configs/lm-nano-mlp.json\n"
      "  knot train --resume runs/translate-kan-small train.steps=4000\n"
      "  mpirun -np 2 knot train configs/translate-kan-small.json");
  cmd->callback([=]() {
    models::Json cfg;
    std::string run_dir = *run;
    std::vector<std::string> assignments;
    for (const auto& a : *overrides) {
      if (a.find('=') == std::string::npos && config->empty())
        *config = a;
      else
        assignments.push_back(a);
    }
    const bool is_resume = !resume->empty();
    if (is_resume) {
      run_dir = *resume;
      const std::string saved = (std::filesystem::path(run_dir) / "config.json").string();
      cfg = models::load_json_file(saved);  // a CONFIG given as well is ignored: the run's own config rules
    } else {
      if (config->empty()) throw CLI::ValidationError("train", "needs a CONFIG file (or --resume DIR)");
      cfg = models::load_json_file(*config);
    }
    models::apply_overrides(cfg, assignments);
    if (!cfg.is_object()) throw std::runtime_error("train: the config must be a JSON object");
    const auto task_it = cfg.find("task");
    if (task_it != cfg.end() && !task_it->is_string())
      throw std::runtime_error(fmt::format("train: config key 'task' must be a string, got {}", task_it->dump()));
    // Data parallel (mpirun/srun): every rank must run this binary with this resolved config.
    dist::check_same_job(dist::Comm::world(), cfg.dump());
    const std::string task = cfg.value("task", "translation");
    train::TrainResult r;
    if (task == "translation")
      r = train::train_translation(cfg, run_dir, is_resume);
    else if (task == "electra")
      r = train::train_electra(cfg, run_dir, is_resume);
    else if (task == "lm")
      r = train::train_language_model(cfg, run_dir, is_resume);
    else
      throw std::runtime_error(
          fmt::format("train: config key 'task' is '{}'; known tasks: 'translation', 'electra', 'lm'", task));
    if (dist::Comm::world().rank() != 0) {  // rank 0 reports
      if (r.stopped_on_nan || r.diverged) throw std::runtime_error("train: the run failed (rank 0 says why)");
      return;
    }
    std::string val;
    for (auto& [k, v] : r.last_validation.items())
      if (k.rfind("val_", 0) == 0 && v.is_number()) val += fmt::format(" {} {:.4f}", k, v.get<double>());
    if (r.steps == r.start_step)
      fmt::print("train: the run is already at step {} of its {} steps; nothing to train (continue it with --resume {} "
                 "train.steps=N);{}\n", r.steps, cfg.value("train", models::Json::object()).value("steps", r.steps),
                 run_dir.empty() ? cfg.value("run_dir", std::string("RUN")) : run_dir, val);
    else
      fmt::print("train: {} steps ({} skipped) in {:.1f} s, {:.0f} tokens/s; {};{}\n", r.steps, r.skipped_steps,
                 r.seconds, r.tokens_per_second,
                 r.has_loss ? fmt::format("last loss {:.4f}", r.last_loss) : std::string("no step had a finite loss"),
                 val);
    // A run that stopped on NaN or diverged failed: a non-zero exit, whatever it wrote.
    if (r.stopped_on_nan) throw std::runtime_error(fmt::format("train: stopped: {}", r.failure));
    if (r.diverged) throw std::runtime_error(fmt::format("train: the run diverged: {}", r.failure));
  });
}

}  // namespace

void add_train_commands(CLI::App& app) {
  add_train_command(app);
  add_translate_command(app);
  add_eval_command(app);
  add_generate_command(app);
}

}  // namespace knot::tools
