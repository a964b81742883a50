// `knot finetune --run DIR --task sentiment [--config FILE] [--out DIR] [--from-scratch] [--resume]
// [key.sub=value ...]`: fine-tunes a pretrained ELECTRA discriminator with a classification head
// and reports test accuracy (train/finetune.h).
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "models/config.h"
#include "dist/comm.h"
#include "tools/commands.h"
#include "train/finetune.h"

namespace knot::tools {

void add_finetune_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "finetune",
      "Fine-tune a pretrained ELECTRA discriminator for classification (task: sentiment); reports test accuracy");
  struct Opts {
    std::string run, task, config, out, model, vocab;
    bool from_scratch = false, resume = false;
    std::vector<std::string> overrides;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--run", o->run,
                  "ELECTRA pretraining run directory: config.json (\"model\"), vocab.txt, checkpoints/latest")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--task", o->task, "What to fine-tune for: sentiment (data/sentiment/, `knot data sentiment`)")
      ->required();
  cmd->add_option("--config", o->config,
                  "Fine-tuning config (data, train; \"model\" patches the pretrained model config) "
                  "[default: configs/finetune-<task>.json]");
  cmd->add_option("--out", o->out, "Output run directory [default: RUN/finetune-<task>]");
  cmd->add_flag("--from-scratch", o->from_scratch,
                "Same model, random initialisation: measures what pretraining buys (needs RUN's config.json and "
                "vocab.txt only, or --model)");
  cmd->add_option("--model", o->model,
                  "With --from-scratch and no --run: an Electra model config, e.g. configs/electra-small-mlp.json")
      ->check(CLI::ExistingFile);
  cmd->add_option("--vocab", o->vocab, "vocab.txt to use [default: RUN/vocab.txt, or data/vocab/vocab.txt with --model]")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--resume", o->resume,
                "Continue the output directory from its latest checkpoint with its own config.json (plus overrides)");
  cmd->add_option("overrides", o->overrides,
                  "Config overrides key.sub=value (Hydra style), e.g. train.steps=300 train.lr=2e-4 "
                  "model.hidden_dropout=0.1 data.max_length=64; keys the config file leaves out may be set too, unknown keys are errors");
  cmd->footer(
      "The model is the pretraining run's Electra with a 2-label classification head on [CLS]\n"
      "(classifier.*, freshly initialised); every tensor of RUN's latest checkpoint must load with its shape.\n"
      "Inputs are [CLS] wordpieces [SEP] cut to data.max_length; AdamW with linear warm-up and decay.\n"
      "The output directory receives config.json (resolved; the directory is itself a loadable run), vocab.txt,\n"
      "metrics.jsonl (loss; val_loss, val_acc, val_error), checkpoints/ and result.json (test_accuracy,\n"
      "test_loss, n, correct). A progress line goes to stderr.\n"
      "Under mpirun -np N the ranks share every batch (docs/distributed.md); rank 0 evaluates the test set.\n"
      "Examples:\n"
      "  knot finetune --run runs/electra-small --task sentiment\n"
      "  knot finetune --run runs/electra-small --task sentiment --from-scratch --out runs/sentiment-scratch\n"
      "  knot finetune --task sentiment --from-scratch --model configs/electra-small-mlp.json --out runs/s \\\n"
      "      model.discriminator.num_layers=2 train.steps=100\n"
      "  knot finetune --run runs/electra-small --task sentiment --resume train.steps=450");
  cmd->callback([o]() {
    train::FinetuneOptions opt;
    opt.task = o->task;
    const auto tasks = train::finetune_tasks();
    if (std::find(tasks.begin(), tasks.end(), o->task) == tasks.end())
      throw std::runtime_error(fmt::format("finetune: unknown task '{}' (known: {})", o->task, fmt::join(tasks, ", ")));
    opt.pretrained_run = o->run;
    opt.out_dir = o->out;
    opt.from_scratch = o->from_scratch;
    opt.model_config = o->model;
    opt.vocab = o->vocab;
    opt.resume = o->resume;
    opt.overrides = o->overrides;
    if (!o->resume) {
      std::string path = o->config;
      if (path.empty()) {
        path = "configs/finetune-" + o->task + ".json";
        if (!std::filesystem::exists(path))
          throw std::runtime_error(fmt::format(
              "finetune: no --config given and '{}' is not here (run from the repository root or pass --config FILE)",
              path));
      }
      opt.config = models::load_json_file(path);
    }
    std::string job = opt.config.dump();  // data parallel: every rank must run the same job
    for (const auto& a : opt.overrides) job += "\n" + a;
    dist::Comm& world = dist::Comm::world();
    dist::check_same_job(world, job + "\n" + o->task + "\n" + o->run + "\n" + o->out);
    const auto r = train::finetune(opt);
    if (world.rank() != 0) {  // rank 0 reports (and rank 0 alone evaluated the test set)
      if (r.train.stopped_on_nan || r.train.diverged) throw std::runtime_error("finetune: the run failed (rank 0 says why)");
      return;
    }
    std::string val;
    for (auto& [k, v] : r.train.last_validation.items())
      if (k.rfind("val_", 0) == 0 && v.is_number()) val += fmt::format(" {} {:.4f}", k, v.get<double>());
    fmt::print("finetune: {} steps ({} skipped) in {:.1f} s; {};{}\n", r.train.steps, r.train.skipped_steps,
               r.train.seconds,
               r.train.has_loss ? fmt::format("last loss {:.4f}", r.train.last_loss)
                                : std::string("no step had a finite loss"),
               val);
    // A run that stopped on NaN or diverged failed: no test result, a non-zero exit.
    if (r.train.stopped_on_nan) throw std::runtime_error(fmt::format("finetune: stopped: {}", r.train.failure));
    if (r.train.diverged) throw std::runtime_error(fmt::format("finetune: the run diverged: {}", r.train.failure));
    fmt::print("test accuracy {:.4f} ({}/{}), test loss {:.4f} -> {}\n", r.test.accuracy(), r.test.correct, r.test.n,
               r.test.loss(), (std::filesystem::path(r.out_dir) / "result.json").string());
  });
}

}  // namespace knot::tools
