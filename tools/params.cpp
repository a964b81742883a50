// `knot params CONFIG [key.sub=value ...]`: builds the model a config describes and prints its
// parameter count per module and in total (e.g. kanformer-mlp: 21,858,816), then the memory
// estimate of training it (models/memory_estimate.h) and the memory available. CONFIG is a model
// config (configs/kanformer-*.json, configs/electra-*.json) or a job config: translation, ELECTRA and
// lm training configs (the vocabulary then comes from tokenizer.vocab_size, an upper bound of the
// BPE's size, or BERT's 30,522 tokens; an lm config without it counts model.vocab_size, so
// configs/gpt2.json prints kanformer's 123,674,449) and knot fit configs.
#include <fmt/format.h>

#include "core/rng.h"
#include "core/shape.h"
#include "models/factory.h"
#include "models/memory_estimate.h"
#include "nn/kan.h"
#include "tools/commands.h"
#include "train/kan_fit.h"

namespace knot::tools {
namespace {

void print_estimate(const models::MemoryEstimate& e) {
  const models::AvailableMemory a = models::available_memory();
  fmt::print("memory estimate for training: {}\n", e.summary());
  fmt::print("available: {} ({}){}\n", bytes_str(a.bytes), a.source,
             e.overflow || e.total() > a.bytes ? "; training would stop at the memory check" : "");
}

}  // namespace

void add_params_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "params", "Print the parameter count of a model config, per module and in total, and its training memory estimate");
  auto config = std::make_shared<std::string>();
  auto overrides = std::make_shared<std::vector<std::string>>();
  auto depth = std::make_shared<int>(2);
  cmd->add_option("config", *config, "Model config JSON (configs/*.json: model, training or knot fit configs)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("overrides", *overrides, "Config overrides key.sub=value");
  cmd->add_option("--depth", *depth, "Module nesting depth of the table")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->footer(
      "The memory estimate (parameters, gradients, optimizer state, buffers, activations) is the one `knot train`,\n"
      "`knot finetune` and `knot fit` check before building a model; training configs use their data.batch_size\n"
      "and data.max_length (lm: data.block_size; model configs: batch 32 × 32 tokens, ELECTRA 32 × 128,\n"
      "decoder-only 16 × 128). A model whose parameters\n"
      "alone exceed the available memory is not built; its estimated count is printed instead.");
  cmd->callback([config, overrides, depth]() {
    models::Json cfg = models::load_json_file(*config);
    models::apply_overrides(cfg, *overrides);
    manual_seed(0);
    const std::string task = cfg.value("task", "");
    const models::AvailableMemory avail = models::available_memory();
    std::shared_ptr<nn::Module> model;
    models::MemoryEstimate est;
    if (task == "fit") {  // train/kan_fit.cpp builds nn::KAN(widths, basis, options + dtype)
      const train::FitModelSpec spec = train::read_fit_model(cfg.at("model"), "fit.model");
      const auto& widths = spec.widths;
      const std::string& basis = spec.basis;
      models::Json options = spec.options;
      const models::Json train = cfg.value("train", models::Json::object());
      options["dtype"] = train.value("dtype", "f64");
      const models::Json gen = cfg.value("data", models::Json::object()).value("generate", models::Json());
      const int64_t rows = gen.is_object() ? gen.value("n_train", int64_t{1000}) : int64_t{1000};
      const int64_t grid_every = train.value("kan_grid_update_every", train.value("update_grid_every", int64_t{10}));
      est = models::estimate_kan_memory(widths, basis, options, {rows, train.value("optimizer", "lbfgs"), 10, grid_every > 0});
      if (est.parameter_bytes + est.buffer_bytes <= avail.bytes && !est.overflow)
        model = std::make_shared<nn::KAN>(widths, basis, options);
    } else {
      models::TrainingShape shape;
      const models::Json model_j = models::resolve_model_config(cfg, &shape);
      est = models::estimate_model_memory(model_j, shape);
      if (est.parameter_bytes + est.buffer_bytes <= avail.bytes && !est.overflow) model = models::build_model(model_j);
    }
    if (model) {
      fmt::print("{}", models::parameter_table(*model, *depth));
    } else {
      fmt::print("not built: the parameters alone need {} but {} is available\n",
                 est.overflow ? std::string("more than 16.0 EiB") : bytes_str(est.parameter_bytes + est.buffer_bytes),
                 bytes_str(avail.bytes));
      std::string n = std::to_string(est.parameters), grouped;  // 1,080,350,400,128
      for (size_t i = 0; i < n.size(); ++i) grouped += (i && (n.size() - i) % 3 == 0 ? "," : "") + n.substr(i, 1);
      fmt::print("total (estimated)  {}\n", est.overflow ? std::string("more than 2^64") : grouped);
    }
    print_estimate(est);
  });
}

}  // namespace knot::tools
