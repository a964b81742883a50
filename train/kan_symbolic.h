// `knot symbolic`: turn the edges of a trained `knot fit` KAN into formulas (pykan's auto_symbolic),
// and the whole network into one formula.
//
// 1. Record each layer's input on the run's training rows (as knot inspect does) and evaluate every
//    edge's learned function φ_oi on them (KANLayer::edge_values).
// 2. Fit every edge to each function f of the library as c·f(a·x + b) + d: for each (a, b) the best
//    (c, d) is a linear least-squares fit, scored by R² (the squared correlation of f(a·x + b) with φ);
//    (a, b) is searched on a 41 × 41 grid over [−10, 10]², then zoomed in four times around the best
//    point. "x" and "0" (a constant) need no search. The edge takes the first function, in library
//    order (simplest first), whose R² is within 1e-3 of the best (a mild preference for simple
//    functions); an edge whose importance is below
//    dead_fraction × its layer's largest becomes "0" (its mean).
// 3. Replace the edges whose R² reaches r2_threshold, and those named by `fix` (layer.i.o=f: input i,
//    output o of layer "layer", e.g. layers.0.1.0=sin). If every edge is then symbolic, tune all
//    constants (c, a, b, d) together with L-BFGS on the training rows' mean squared error (knot's
//    autograd, f64); else the formula keeps the numeric edges as φ[layer.i.o](…) and is not tuned.
// 4. Print the network as one formula: each edge's term substituted into the next layer, with
//    constants folded where that is exact — sums merged, "x" edges distributed, the inner scale of
//    an edge distributed over its argument, c·exp(u + k) written (c·e^k)·exp(u), and (a·u)² as a²·u².
//    Train and test RMSE of the symbolic network are reported (the test table of the run, if any).
// The library: x, x^2, x^3, 1/x, sqrt, exp, log, sin, cos, tanh, sigmoid, abs, 0; `library`
// restricts it (e.g. {"x", "sin", "exp"}). Outputs: returned, printed by the CLI, and with out_dir
// written there as symbolic.json (every edge: function, constants, R², replaced) and formula.txt.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace knot::train {

struct SymbolicOptions {
  std::string run_dir;
  std::string out_dir;               // "" = write nothing
  double r2_threshold = 0.99;
  std::vector<std::string> fix;      // "layers.0.1.0=sin"
  std::vector<std::string> library;  // empty = all
  bool tune = true;
  int64_t tune_steps = 50;
  int64_t rows = 1000;
  double dead_fraction = 0.01;
};

struct SymbolicEdge {
  std::string layer, function;
  int64_t in = 0, out = 0;
  double c = 0, a = 1, b = 0, d = 0;  // c·f(a·x + b) + d
  double r2 = 0;
  bool replaced = false, fixed = false;
};

struct SymbolicResult {
  std::vector<SymbolicEdge> edges;
  std::vector<std::string> formulas;  // one per output of the network
  int64_t numeric_edges = 0;          // edges left as splines
  bool tuned = false;
  double train_rmse = -1, test_rmse = -1;  // of the symbolic network; test −1 without a test table
  double train_rmse_before_tuning = -1;
};

SymbolicResult run_symbolic(const SymbolicOptions& opt, const std::function<void(const std::string&)>& log);

}  // namespace knot::train
