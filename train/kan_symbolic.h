// `knot symbolic`: turn the edges of a trained `knot fit` KAN into formulas (pykan's auto_symbolic),
// and the whole network into one formula.
//
// 1. Record each layer's input on the run's training rows (as knot inspect does) and evaluate every
//    edge's learned function φ_oi on them (KANLayer::edge_values).
// 2. Fit every edge to each function f of the library as c·f(a·x + b) + d: for each (a, b) the best
//    (c, d) is a linear least-squares fit, scored by R² (the squared correlation of f(a·x + b) with φ);
//    (a, b) is searched on a 41 × 41 grid over [−10, 10]², then zoomed in four times around the best
//    point. "x" and "0" (a constant) need no search. Each function gets the score
//    complexity + log2(1 − R² + 1e-5) / log2(simplicity), and the edge takes the first function in
//    library order (simplest first) whose score is within half a unit of the lowest (so x^2 beats a
//    cos that fits a parabola a hair better). Each function has a complexity (0: 0;
//    x: 1; x^2, 1/x, sqrt, exp, log, sin, cos: 2; x^3, tanh, sigmoid, abs: 3), and one unit of it is
//    worth a factor `simplicity` (16) in the unexplained variance 1 − R². So a near-linear edge is
//    "x", not the square of a shifted, scaled input that fits it a little better (pykan weighs
//    complexity against R² the same way). An edge whose importance is below
//    dead_fraction × its layer's largest becomes "0" (its mean); "0" is not chosen otherwise.
//    Staged (refit_steps > 0, pykan's fix-then-fit): once every edge of a layer (and of the layers
//    before it) is replaced, the constants so far and the splines of the later layers are trained
//    together for refit_steps L-BFGS steps on the training rows, and the next layer is fitted on
//    its input as the symbolic layers now compute it. The later splines so take the shape the
//    formulas need: after x1·x2's first layer becomes x, its second layer's edges are exact squares.
// 3. Replace the edges whose R² reaches r2_threshold, and those named by `fix` (layer.i.o=f: input i,
//    output o of layer "layer", e.g. layers.0.1.0=sin; layer=f: every edge of it, e.g. layers.0=x). If every edge is then symbolic, tune all
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
  double simplicity = 16;  // > 1: how much better an R² must be to pay for one unit of complexity
  int64_t refit_steps = 50;  // the staged fit's L-BFGS steps after each fully symbolic layer (0: off)
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
