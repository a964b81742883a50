// `knot inspect --run DIR -o OUT [--layer NAME ...]`: pictures and numbers of every learned edge
// function of a run's KAN layers; `knot prune --run DIR --threshold T [-o NEW]`: a smaller copy of a
// fit run without its unimportant nodes and edges (train/kan_inspect.h).
#include <fmt/format.h>

#include "tools/commands.h"
#include "train/kan_inspect.h"
#include "train/kan_symbolic.h"

namespace knot::tools {

namespace {

void add_prune_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("prune", "Remove the unimportant hidden nodes and edges of a `knot fit` run (bspline, chebyshev, legendre, fourier, relu)");
  auto opt = std::make_shared<train::PruneOptions>();
  cmd->add_option("--run", opt->run_dir, "Run directory of `knot fit`")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--threshold", opt->threshold,
                  "Importance (mean |phi| over the training rows) below which an edge is cut and a hidden node "
                  "removed (when its largest incoming or outgoing edge is below it)")
      ->capture_default_str();
  cmd->add_option("-o,--output", opt->out_dir, "New run directory (must not exist; default: RUN-pruned)");
  cmd->add_option("--rows", opt->rows, "Training rows the importances are measured on")->capture_default_str();
  cmd->footer("Example: knot prune --run runs/fit-exp-sin --threshold 0.05 && knot inspect --run runs/fit-exp-sin-pruned -o pics");
  cmd->callback([opt]() {
    train::run_prune(*opt, [](const std::string& line) { fmt::print("{}\n", line); });
  });
}

void add_symbolic_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("symbolic", "Fit every edge of a `knot fit` KAN to a formula, and print the whole network as one");
  auto opt = std::make_shared<train::SymbolicOptions>();
  auto no_tune = std::make_shared<bool>(false);
  cmd->add_option("--run", opt->run_dir, "Run directory of `knot fit` (e.g. after knot prune and a refit)")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--r2", opt->r2_threshold, "Replace an edge by its best formula when R^2 reaches this")
      ->capture_default_str();
  cmd->add_option("--fix", opt->fix, "Force an edge's function: LAYER.IN.OUT=FUNCTION, e.g. layers.0.1.0=sin, or every edge of a layer: "
                  "LAYER=FUNCTION, e.g. layers.0=x")
      ->delimiter(',');
  cmd->add_option("--lib", opt->library,
                  "Functions to try, e.g. --lib x,sin,exp (default all: x x^2 x^3 1/x sqrt exp log sin cos tanh sigmoid "
                  "abs 0)")
      ->delimiter(',');
  cmd->add_option("--simplicity", opt->simplicity,
                  "How strongly simple functions are preferred: one unit of complexity (x: 1, x^2 or sin: 2, tanh: 3) "
                  "is worth this factor in the unexplained variance 1 - R^2")
      ->capture_default_str()
      ->check(CLI::Range(1.0001, 1e12));
  cmd->add_option("--refit-steps", opt->refit_steps,
                  "After a layer becomes fully symbolic, train it with the later layers' splines for this many L-BFGS "
                  "steps before fitting the next layer (0: fit every layer on the original network)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{100000}));
  cmd->add_flag("--no-tune", *no_tune, "Keep the fitted constants (no joint L-BFGS tuning)");
  cmd->add_option("--tune-steps", opt->tune_steps, "L-BFGS steps of the tuning")->capture_default_str();
  cmd->add_option("--rows", opt->rows, "Training rows the edges are fitted on")->capture_default_str();
  cmd->add_option("-o,--output", opt->out_dir, "Also write symbolic.json and formula.txt here");
  cmd->footer("Each edge is fitted as c*f(a*x + b) + d (kan_symbolic.h). Example: knot symbolic --run runs/fit-sparse-refit");
  cmd->callback([opt, no_tune]() {
    opt->tune = !*no_tune;
    train::run_symbolic(*opt, [](const std::string& line) { fmt::print("{}\n", line); });
  });
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  add_prune_command(app);
  add_symbolic_command(app);
  auto* cmd = app.add_subcommand(
      "inspect", "Plot every learned edge function of a run's KAN layers, with edge importances (needs gnuplot)");
  auto opt = std::make_shared<train::InspectOptions>();
  auto no_plots = std::make_shared<bool>(false);
  cmd->add_option("--run", opt->run_dir, "Run directory of `knot fit`, or of a translation or ELECTRA `knot train`")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("-o,--output", opt->out_dir, "Directory for <layer>.png, layers.md and inspect.json")->required();
  cmd->add_option("--layer", opt->layers, "KAN layers to inspect, by name or dotted prefix (default: all)")
      ->delimiter(',');
  cmd->add_option("--rows", opt->rows, "Recorded input rows per layer")->capture_default_str();
  cmd->add_option("--top", opt->top_k,
                  "Panels per layer: every edge when out x in <= this, else this many, by importance")
      ->capture_default_str();
  cmd->add_option("--dead", opt->dead_fraction,
                  "An edge is dead below this fraction of its layer's largest importance")
      ->capture_default_str();
  cmd->add_flag("--no-plots", *no_plots, "Numbers only (layers.md, inspect.json); no gnuplot needed");
  cmd->footer(
      "Importance of an edge = mean |phi(x)| over the recorded inputs (pykan's score). Example:\n"
      "  knot fit configs/fit-exp-sin.json && knot inspect --run runs/fit-exp-sin -o runs/fit-exp-sin-inspect");
  cmd->callback([opt, no_plots]() {
    opt->plots = !*no_plots;
    const auto r = train::run_inspect(*opt, [](const std::string& line) { fmt::print(stderr, "{}\n", line); });
    fmt::print("{}", r.table);
    fmt::print("inspect: wrote {} layer{} to {}\n", r.layers.size(), r.layers.size() == 1 ? "" : "s", r.out_dir);
  });
}

}  // namespace knot::tools
