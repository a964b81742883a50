// `knot config --schema NAME [--markdown]` and `knot config --check CONFIG [key.sub=value ...]`: every
// key of every task, and a whole-config check that runs nothing (train/config_schema.h).
#include <fmt/format.h>

#include <iostream>

#include "models/config.h"
#include "tools/commands.h"
#include "train/config_schema.h"

namespace knot::tools {

void add_config_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("config", "List every config key of a task (--schema), or check a whole config without running it (--check)");
  struct Opts {
    std::string schema, check;
    bool markdown = false, changed = false, resolved = false;
    std::vector<std::string> overrides;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--schema", o->schema,
                  fmt::format("Print every key of NAME: its type, default and meaning ({})",
                              fmt::join(train::schema_names(), ", ")));
  cmd->add_option("--check", o->check,
                  "Read and check every key of CONFIG (plus overrides) as its task would, reading no data and "
                  "writing nothing")
      ->check(CLI::ExistingFile);
  cmd->add_option("overrides", o->overrides, "With --check: config overrides key.sub=value, as knot train takes them");
  cmd->add_flag("--markdown", o->markdown, "With --schema: a Markdown table (docs/config-reference.md is made so)");
  cmd->add_flag("--changed", o->changed, "With --check: also list the keys whose value differs from the default");
  cmd->add_flag("--resolved", o->resolved,
                "With --check: print the config with every key the task reads and its value in effect (JSON; keys "
                "the task fills in, such as vocabulary sizes from the tokenizer, are left out)");
  cmd->footer(
      "A key is listed because its task reads it: each read in the code names the key, its type, default and\n"
      "meaning (core/config.h), and --schema runs the task's reading on a minimal config. The model's KAN\n"
      "basis options are listed once, under NAME bases (kan_<basis>.<option>).\n"
      "Examples:\n"
      "  knot config --schema translation\n"
      "  knot config --schema bases\n"
      "  knot config --check configs/translate-kan-small.json model.projection.options.grid_size=8 --changed\n"
      "  knot config --check configs/lm-micro-kan.json --resolved > full.json   # every default written out");
  cmd->callback([o]() {
    if (o->schema.empty() == o->check.empty())
      throw CLI::ValidationError("config", "give either --schema NAME or --check CONFIG");
    if (!o->schema.empty()) {
      if (!o->overrides.empty()) throw CLI::ValidationError("config", "overrides go with --check, not --schema");
      std::cout << train::schema_table(train::config_schema(o->schema), o->markdown);
      return;
    }
    models::Json cfg = models::load_json_file(o->check);
    models::apply_overrides(cfg, o->overrides);
    const auto keys = train::check_config(cfg);
    if (o->resolved) {
      std::cout << config::resolved_config(keys).dump(2) << "\n";
      return;
    }
    std::vector<config::KeyInfo> changed;
    for (const auto& k : keys)
      if (!k.required && k.type != "object" && k.value != k.fallback) changed.push_back(k);
    std::cout << fmt::format("config: {} is fine: {} keys read and checked ({} differ from their defaults); data files "
                             "are read only when the run starts\n",
                             o->check, keys.size(), changed.size());
    if (o->changed)
      for (const auto& k : changed)
        std::cout << fmt::format("  {} = {}  (default {})\n", k.path, k.value.dump(), k.fallback.dump());
  });
}

}  // namespace knot::tools
