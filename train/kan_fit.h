// The `knot fit` / `knot predict` job: train a KAN stack on a numeric CSV table (columns x1..xn, y)
// with L-BFGS or Adam, with periodic grid updates, and use it for predictions.
//
// Config (JSON; every key optional except where noted, unknown keys are errors):
//   {"data":  {"train": "train.csv", "test": "test.csv" | "", "inputs": ["x1", ...] (default: all but target),
//              "target": "y", "test_fraction": 0.2 (used when no test file),
//              "generate": {"function": "exp_sin_sq", "n_train": 1000, "n_test": 1000, "seed": 1}},
//    "model": {"widths": [2, 5, 1] (required),
//              "projection": {"kind": "kan_bspline", "options": {...basis options...}}},
//    "train": {"optimizer": "lbfgs" | "adam", "steps": 50, "lr": 1.0, "batch_size": 0 (full batch),
//              "kan_grid_update_every": 10, "kan_grid_update_until": 49, "kan_regularization": 0.0,
//              "kan_reg_a": 1.0, "kan_reg_e": 1.0, "seed": 0, "dtype": "f64", "log_every": 5,
//              "grid_schedule": [] (e.g. [5, 10, 20]: grid extension, below),
//              "kan_reg_metric": "weights" | "activations" (the penalty, below),
//              "init_from": "" (a run directory whose model.safetensors fits this model, e.g. a
//              `knot prune` output with its config.json: start from its weights),
//              "memory_check": true (refuse a model that would not fit in memory; models/memory_estimate.h)},
//    "run_dir": "runs/fit"}
// grid_schedule (bspline only): pykan's grid extension. The fit runs one stage of `steps` steps per
// entry; the model starts with the first grid size, and before each later stage every layer's grid is
// refined to the next size on the training inputs (nn::KAN::refine_grid; the optimizer starts
// afresh). model.projection.options.grid_size may be left out or be the first or the last entry; config.json
// records the last, the size the saved model has. Each stage logs its train and test RMSE (metrics.json "stages").
// The grid, regularisation and projection keys are spelled as the trainer's (train/trainer.h); pykan's
// spellings (update_grid_every, stop_grid_update_step S = kan_grid_update_until S - 1 (S <= 1: no
// update; kan_grid_update_until 0 means the whole run, as in the trainer), lamb, lamb_l1,
// lamb_entropy, reg_metric; model.basis/options) are read with a deprecation warning.
// kan_regularization λ > 0 adds a sparsity penalty, λ · (kan_reg_a · Σ l1 + kan_reg_e · entropy(l1 / Σ l1))
// per layer. kan_reg_metric "weights" (default, efficient-kan's): l1 = mean |spline_weight| per edge, defined
// for bspline only (another basis is an error before training). "activations" (pykan's): l1 = mean
// |φ_oi| over the batch, for every basis with KANLayer::edge_activations (all but rbf and relu).
// With data.generate the train/test tables are generated (and written into the run directory);
// "exp_sin_sq" is f(x1, x2) = exp(sin(π·x1) + x2²) on U[-1, 1]², the classic KAN example; also
// "product" (x1·x2), "hypot" (√(x1² + x2²)) and "nested" (exp(sin(x1² + x2²))).
// The run directory gets config.json (the resolved config), model.safetensors and metrics.json.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace knot::nn {
class KAN;
}

namespace knot::train {

// One stage of a fit: its grid size (0 for bases without one) and the RMSEs at its end.
struct FitStage {
  int64_t grid_size = 0;
  double train_rmse = 0, test_rmse = 0;
};

struct FitResult {
  double train_rmse = 0;
  double test_rmse = 0;
  int steps = 0;  // in all stages
  std::vector<FitStage> stages;
  std::string run_dir;
};

using FitLog = std::function<void(const std::string& line)>;

// A fit config's (or fit run's) model object: {"widths": [2, 5, 1], "projection": "kan_<basis>" or
// {"kind": "kan_<basis>", "options": {...}}} (default kan_bspline), the KAN spec as every task spells
// it. The old spelling {"basis": "bspline", "options": {...}} is read with a deprecation warning.
struct FitModelSpec {
  std::vector<int64_t> widths;
  std::string basis = "bspline";  // without "kan_"
  nlohmann::json options = nlohmann::json::object();
};
FitModelSpec read_fit_model(const nlohmann::json& model, const std::string& context);

FitResult run_fit(const nlohmann::json& config, const FitLog& log);

// Predicts the target for every row of `input_csv` (which must hold the model's input columns)
// and writes a CSV with the inputs and a "<target>_pred" column to `output_csv` ("-" = stdout).
// Returns the number of rows predicted.
// The KAN of a `knot fit` run directory (eval mode), after checking that it is one and that its
// config's sizes fit in memory; *config gets the run's config.json. `command` names the caller in errors.
std::shared_ptr<nn::KAN> load_fit_model(const std::string& run_dir, const std::string& command,
                                        nlohmann::json* config = nullptr);

int64_t run_predict(const std::string& run_dir, const std::string& input_csv, const std::string& output_csv);

}  // namespace knot::train
