// `knot inspect`: look inside the KAN layers of a trained run — pykan's plot of every learned edge
// function, with the numbers behind it.
//
// What it records: the run's model is loaded (the latest checkpoint) and run on a sample of its own
// data with every KAN layer capturing its input: `knot fit` runs on their training table (RUN/train.csv
// when the fit generated it, else data.train), translation runs on the first sentence pairs of
// data.val that fit the model (one teacher-forced batch; padded positions count as rows too), ELECTRA
// runs on the first validation sequences (one batch with the evaluation masking: the generator's and
// the discriminator's layers both record).
// Each selected layer then gets, over the first `rows` recorded input rows x (N, in):
//   importance[o, i] = mean_n |φ_oi(x[n, i])|   (pykan's edge score; KANLayer::edge_values gives φ)
//   dead edges       importance below dead_fraction × the layer's largest importance
//   outside grid     the fraction of recorded inputs outside the interior of the layer's knot grid
//                    (t[k] … t[nk−1−k] per feature; only bases with a data-dependent grid)
//   quantiles        min, 25 %, median, 75 %, max of the importances
// and, unless plots are off, one PNG per layer (gnuplot): a grid of small panels, one per edge
// (every edge when out·in ≤ top_k, laid out row o / column i as pykan does; else the top_k edges by
// importance), each showing φ_oi over the range its input took, the knots as red marks on the
// axis and the histogram of the recorded inputs beneath; the darker the curve, the more important
// the edge.
// Files (in out_dir, each written atomically): <layer>.png, layers.md (the table, also returned and
// printed), inspect.json (every number above; per-edge importances for layers of ≤ 65,536 edges).
// The run directory is only read.
#pragma once

#include <array>
#include <functional>
#include <string>
#include <vector>

namespace knot::train {

struct InspectOptions {
  std::string run_dir;
  std::string out_dir;              // required
  std::vector<std::string> layers;  // layer names or dotted prefixes ("encoder"); empty = every KAN layer
  int64_t rows = 1000;              // recorded input rows per layer
  int64_t top_k = 64;               // panels per layer at most
  double dead_fraction = 0.01;
  bool plots = true;                // false: numbers only (no gnuplot needed)
};

struct InspectLayer {
  std::string name, basis;
  int64_t in = 0, out = 0, rows = 0;
  std::vector<double> importance;      // (out, in), row-major
  int64_t dead_edges = 0;
  double outside_grid = -1;            // fraction; −1 when the basis has no knot grid
  std::array<double, 5> quantiles{};   // of importance: min, 25 %, median, 75 %, max
  int64_t panels = 0;
  std::string png;                     // "" without plots
};

struct InspectResult {
  std::string task, out_dir, table;
  std::vector<InspectLayer> layers;
};

InspectResult run_inspect(const InspectOptions& opt, const std::function<void(const std::string&)>& log);

// `knot prune`: a smaller copy of a `knot fit` run of B-spline KAN layers. Importances are measured
// as inspect measures them (mean |φ| per edge over the first `rows` training rows). Then, with
// pykan's rule, a hidden node stays only when its largest incoming and its largest outgoing edge
// importance both reach `threshold`; if no node of a hidden layer does, the one whose smaller score is
// largest stays. Every remaining edge below the threshold is cut (its base and spline weights set to
// 0). Inputs and outputs stay. The new run directory (out_dir, default RUN-pruned; it must not exist)
// is written whole or not at all: config.json (the new widths), model.safetensors, pruned.json
// (what was removed, and the measured change) and the run's generated train/test CSVs; `knot
// predict` and `knot inspect` read it like any fit run.
struct PruneOptions {
  std::string run_dir, out_dir;
  double threshold = 1e-2;
  int64_t rows = 1000;
};

struct PruneResult {
  std::string out_dir;
  std::vector<int64_t> widths_before, widths_after;
  std::vector<std::vector<int64_t>> removed_nodes;  // per hidden layer (the outputs of layers.l, l < last)
  int64_t edges_before = 0, edges_after = 0;        // edges of the new model with non-zero weights
  double max_change = 0;                            // max |prediction change| over the recorded rows
  double test_rmse_before = -1, test_rmse_after = -1;  // −1 without a test table
};

PruneResult run_prune(const PruneOptions& opt, const std::function<void(const std::string&)>& log);

}  // namespace knot::train
