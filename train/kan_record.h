// Shared by knot inspect, prune and symbolic (train/kan_inspect.cpp, train/kan_symbolic.cpp): load a
// run, record the inputs its KAN layers see on its own data, and measure edge importances.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include <nlohmann/json.hpp>

#include "nn/basis_registry.h"
#include "nn/kan.h"
#include "train/kan_inspect.h"

namespace knot::train {

// Loads the run of opt.run_dir (its model into `model`, which keeps it alive) and runs it on a sample
// of its own data (kan_inspect.h says which) with every KAN layer that opt.layers selects capturing
// its input; `layers` gets those layers by name. An unmatched --layer name is an error listing the
// layers there are. Returns the run's task ("fit", "translation").
std::string record_inputs(const InspectOptions& opt, std::shared_ptr<nn::Module>& model,
                          std::vector<std::pair<std::string, nn::KANLayer*>>& layers,
                          const std::function<void(const std::string&)>& log);

// A `knot fit` run of a KAN stack, loaded and run on its first `rows` training rows with every
// layer recording its input (record_inputs). `who` names the command in errors ("prune").
struct RecordedFit {
  nlohmann::json config;
  std::shared_ptr<nn::Module> model;  // keeps `kan` alive
  nn::KAN* kan = nullptr;
  std::vector<std::pair<std::string, nn::KANLayer*>> layers;
};
RecordedFit record_fit_run(const std::string& run_dir, int64_t rows, const std::string& who,
                           const std::function<void(const std::string&)>& log);

// The input a layer recorded, as (rows, in) f64 on the CPU, at most `rows` rows; capturing is off after.
Tensor recorded_rows(nn::KANLayer& layer, const std::string& name, int64_t rows);

// Mean |φ_oi| over the rows of x (N, in): (out, in) row-major (the layer's edge_values, in row chunks).
std::vector<double> edge_importance(const nn::KANLayer& layer, const Tensor& x);

// fn(r0, e) for the layer's edge_values e (rows, out, in) over row chunks of x starting at row r0.
void for_each_edge_chunk(const nn::KANLayer& layer, const Tensor& x,
                         const std::function<void(int64_t, const Tensor&)>& fn);

}  // namespace knot::train
