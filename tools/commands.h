// Sub-commands of the `knot` tool; each add_*_command registers one with its flags and help.
#pragma once

#include <CLI/CLI.hpp>

namespace knot::tools {

void add_demo_command(CLI::App& app);
void add_fit_commands(CLI::App& app);  // fit, predict
void add_params_command(CLI::App& app);
void add_plot_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_data_commands(CLI::App& app);  // data ende|corpus|vocab|sentiment|all
void add_tokenizer_commands(CLI::App& app);  // tokenizer train|encode|decode
void add_train_commands(CLI::App& app);  // train, translate, eval, generate
void add_finetune_command(CLI::App& app);  // finetune --task sentiment
void add_export_commands(CLI::App& app);  // export onnx|torch
void add_import_command(CLI::App& app);
void add_sweep_command(CLI::App& app);
void add_config_command(CLI::App& app);  // config --schema NAME | --check CONFIG  // sweep: a grid of knot train runs and their table

}  // namespace knot::tools
