// `knot params CONFIG [key.sub=value ...]`: builds the model a config describes and prints its
// parameter count per module and in total (e.g. kanformer-mlp: 21,858,816).
#include <fmt/format.h>

#include "core/rng.h"
#include "models/factory.h"
#include "tools/commands.h"

namespace knot::tools {

void add_params_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("params", "Print the parameter count of a model config, per module and in total");
  auto config = std::make_shared<std::string>();
  auto overrides = std::make_shared<std::vector<std::string>>();
  auto depth = std::make_shared<int>(2);
  cmd->add_option("config", *config, "Model config JSON (configs/*.json)")->required()->check(CLI::ExistingFile);
  cmd->add_option("overrides", *overrides, "Config overrides key.sub=value");
  cmd->add_option("--depth", *depth, "Module nesting depth of the table")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->callback([config, overrides, depth]() {
    models::Json cfg = models::load_json_file(*config);
    models::apply_overrides(cfg, *overrides);
    manual_seed(0);
    const auto model = models::build_model(cfg.contains("model") && cfg["model"].is_object() ? cfg["model"] : cfg);
    fmt::print("{}", models::parameter_table(*model, *depth));
  });
}

}  // namespace knot::tools
