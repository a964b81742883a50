// `knot plot`: training curves of one or more runs (their metrics.jsonl) drawn to a PNG with
// gnuplot, one panel per metric, one line per run (e.g. KAN vs MLP on one chart).
#pragma once

#include <string>
#include <vector>

namespace knot::tools {

struct Series {
  std::string run;                            // label: the run directory's name
  std::vector<std::pair<double, double>> xy;  // (step, value)
};

// Reads RUN/metrics.jsonl (or a .jsonl path) and returns, for `metric`, the (step, value) pairs of
// the lines that have both a numeric "step" and a numeric `metric`. Bad JSON lines are errors
// naming the file and line.
Series read_metric(const std::string& run, const std::string& metric);
// The metrics worth plotting that occur in any of the runs, in a fixed order
// (loss, val_loss, val_ppl, val_bleu, lr, then the rest alphabetically).
std::vector<std::string> available_metrics(const std::vector<std::string>& runs);
// The gnuplot script that draws `panels` (metric -> one series per run) into `png`.
std::string gnuplot_script(const std::vector<std::pair<std::string, std::vector<Series>>>& panels, const std::string& png,
                           const std::string& title);

// Draws `metrics` (every numeric one when empty) of `runs`, one panel per metric and one line per
// run, into `png` through gnuplot, prints "<who>: wrote …" and returns the metrics drawn. `who`
// names the command in errors.
std::vector<std::string> plot_runs(const std::vector<std::string>& runs, const std::string& png,
                                   const std::vector<std::string>& metrics, const std::string& title,
                                   const std::string& who);

}  // namespace knot::tools
