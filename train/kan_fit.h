// The `knot fit` / `knot predict` job: train a KAN stack on a numeric CSV table (columns x1..xn, y)
// with L-BFGS or Adam, with periodic grid updates, and use it for predictions.
//
// Config (JSON; every key optional except where noted, unknown keys are errors):
//   {"data":  {"train": "train.csv", "test": "test.csv" | "", "inputs": ["x1", ...] (default: all but target),
//              "target": "y", "test_fraction": 0.2 (used when no test file),
//              "generate": {"function": "exp_sin_sq", "n_train": 1000, "n_test": 1000, "seed": 1}},
//    "model": {"widths": [2, 5, 1] (required), "basis": "bspline", "options": {...basis options...}},
//    "train": {"optimizer": "lbfgs" | "adam", "steps": 50, "lr": 1.0, "batch_size": 0 (full batch),
//              "update_grid_every": 10, "stop_grid_update_step": 50, "lamb": 0.0, "lamb_l1": 1.0,
//              "lamb_entropy": 1.0, "seed": 0, "dtype": "f64", "log_every": 5,
//              "grid_schedule": [] (e.g. [5, 10, 20]: grid extension, below),
//              "reg_metric": "weights" | "activations" (the penalty of lamb, below),
//              "init_from": "" (a run directory whose model.safetensors fits this model, e.g. a
//              `knot prune` output with its config.json: start from its weights),
//              "memory_check": true (refuse a model that would not fit in memory; models/memory_estimate.h)},
//    "run_dir": "runs/fit"}
// grid_schedule (bspline only): pykan's grid extension. The fit runs one stage of `steps` steps per
// entry; the model starts with the first grid size, and before each later stage every layer's grid is
// refined to the next size on the training inputs (nn::KAN::refine_grid; the optimizer starts
// afresh). model.options.grid_size may be left out or be the first or the last entry; config.json
// records the last, the size the saved model has. Each stage logs its train and test RMSE (metrics.json "stages").
// lamb > 0 adds a sparsity penalty, lamb · (lamb_l1 · Σ l1 + lamb_entropy · entropy(l1 / Σ l1)) per
// layer. reg_metric "weights" (default, efficient-kan's): l1 = mean |spline_weight| per edge, defined
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
