// `knot fit CONFIG [key.sub=value ...]` and `knot predict --run DIR --input X.csv`: train a KAN
// stack on a CSV table and use it (train/kan_fit.h has the config format).
#include <fmt/format.h>

#include <chrono>

#include "models/config.h"
#include "train/kan_fit.h"
#include "tools/commands.h"

namespace knot::tools {

void add_fit_commands(CLI::App& app) {
  {
    auto* cmd = app.add_subcommand("fit", "Train a KAN stack on a numeric CSV (columns x1..xn, y) with L-BFGS or Adam");
    auto config = std::make_shared<std::string>();
    auto overrides = std::make_shared<std::vector<std::string>>();
    cmd->add_option("config", *config, "JSON config (see configs/fit-exp-sin.json)")->required()->check(CLI::ExistingFile);
    cmd->add_option("overrides", *overrides, "Config overrides key.sub=value (e.g. train.steps=100 data.test=t.csv)");
    cmd->footer(
        "The run directory (run_dir) receives config.json, model.safetensors, metrics.json and, for generated data,\n"
        "train.csv and test.csv. Example: knot fit configs/fit-exp-sin.json train.optimizer=adam train.steps=2000");
    cmd->callback([config, overrides]() {
      models::Json cfg = models::load_json_file(*config);
      models::apply_overrides(cfg, *overrides);
      const auto t0 = std::chrono::steady_clock::now();
      const auto r = train::run_fit(cfg, [](const std::string& line) { fmt::print("{}\n", line); });
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      fmt::print("fit: done in {:.1f} s; test RMSE {:.4e} ({})\n", secs, r.test_rmse, r.run_dir);
    });
  }
  {
    auto* cmd = app.add_subcommand("predict", "Predict with a model trained by `knot fit`");
    auto run = std::make_shared<std::string>(), input = std::make_shared<std::string>();
    auto output = std::make_shared<std::string>("-");
    cmd->add_option("--run", *run, "Run directory written by knot fit")->required()->check(CLI::ExistingDirectory);
    cmd->add_option("--input", *input, "CSV with the model's input columns")->required()->check(CLI::ExistingFile);
    cmd->add_option("--output,-o", *output, "Output CSV (inputs plus <target>_pred); '-' for stdout")->capture_default_str();
    cmd->callback([run, input, output]() {
      const int64_t n = train::run_predict(*run, *input, *output);
      if (*output != "-") fmt::print("predict: wrote {} rows to {}\n", n, *output);
    });
  }
}

}  // namespace knot::tools
