// `knot sweep` (tools/sweep.cpp), the parts that need no processes: the grid of a Hydra-style
// multirun (`key=a,b,c other=x,y` -> one run per combination), the name of each point's run
// directory, and the table of what each finished point reached, read back from its directory.
//
//   knot sweep configs/translate-kan-small.json model.projection.kind=mlp,kan_bspline train.steps=3000 --seeds 1,2
//
// runs four trainings (2 projections x 2 seeds) into ROOT/<point>, each a normal run directory
// (`knot train --resume` continues it, `knot eval` reads it), then writes ROOT/sweep.md and
// ROOT/sweep.csv. Rerunning the command skips finished points and resumes interrupted ones.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "models/config.h"

namespace knot::train {

// "a,b,[1,2],{\"k\":1,\"j\":2},\"x,y\"" -> a | b | [1,2] | {"k":1,"j":2} | "x,y": the commas that
// separate values are those outside brackets, braces and double quotes. An empty value, an unclosed
// bracket or quote, or a closing bracket without its opening one is an error naming the text.
std::vector<std::string> split_sweep_values(const std::string& text);

struct SweepAxis {
  std::string key;
  std::vector<std::string> values;  // as written: each becomes the override key=value
};

struct SweepPlan {
  std::vector<std::string> fixed;  // overrides every point gets, in the order given
  std::vector<SweepAxis> axes;     // the swept keys in the order given; --seeds is the last axis ("seed")
};

// Overrides with more than one value (top-level commas) become axes; the others are fixed. A key
// given twice, or `seed` both as an override and through `seeds`, is an error naming it; so is an
// assignment without '='. `seeds` empty: no seed axis (the config's seed).
SweepPlan parse_sweep(const std::vector<std::string>& assignments, const std::vector<int64_t>& seeds);

struct SweepPoint {
  std::vector<std::pair<std::string, std::string>> values;  // (key, value) per axis, in axis order
  std::vector<std::string> overrides;                       // fixed + "key=value" per axis
  std::string name;                                         // its run directory's name (below)
};

// Every combination, the first axis slowest (as Hydra's multirun). A plan without axes is one point.
// Names are "key=value" per axis joined by "__", with characters other than letters, digits and
// ._-=+ replaced by '_' ("model.projection.kind=mlp__seed=2"); a plan without axes is "base". Two
// points with one name (values that differ only in replaced characters) are an error.
std::vector<SweepPoint> expand_sweep(const SweepPlan& plan);

// What one point's run directory holds, for the table.
struct SweepResult {
  std::string name;
  std::vector<std::pair<std::string, std::string>> values;
  std::string status;              // "done", "partial" (checkpoints short of train.steps), "failed: …", "not run"
  int64_t steps = 0;               // the latest checkpoint's step
  int64_t target_steps = 0;        // train.steps of the run's config
  int64_t parameters = -1;         // from the checkpoint's metadata (-1: unknown)
  std::optional<double> final_val_loss, best_val_loss, final_val_bleu;
  int64_t best_val_step = 0;
  std::vector<std::optional<double>> val_loss_at;  // at each requested step: the last validation at or before it
  std::optional<double> seconds_per_step;          // median over the logged windows (training only)
  std::optional<double> tokens_per_second;         // median over the logged windows
  std::optional<double> peak_rss_mib;              // the training process's peak resident memory
  std::optional<double> test_bleu, test_bleu_beam, test_loss;
  int64_t beam = 0;                                // the beam width of test_bleu_beam (0: none)
};

// Reads RUN/config.json, RUN/metrics.jsonl, the latest checkpoint's metadata and RUN/sweep-point.json
// (written by knot sweep: peak memory, status, test evaluations). Missing pieces stay empty; a
// malformed file is an error naming it. `target_steps` > 0 is the point's train.steps as the sweep
// resolves it now (a sweep rerun with more steps makes finished points partial); 0: the run's own
// config.json says.
SweepResult read_sweep_result(const std::string& run_dir, const SweepPoint& point, const std::vector<int64_t>& val_at,
                              int64_t target_steps = 0);

// The table: one row per point, a column per axis, then parameters, steps, final and best validation
// loss (with its step), validation loss at each val_at step, final validation BLEU, test BLEU (greedy
// and beam), seconds per step, tokens/s, peak memory and status. Absent values are "-".
std::string sweep_markdown(const std::vector<SweepResult>& rows, const std::vector<std::string>& axis_keys,
                           const std::vector<int64_t>& val_at);
std::string sweep_csv(const std::vector<SweepResult>& rows, const std::vector<std::string>& axis_keys,
                      const std::vector<int64_t>& val_at);

}  // namespace knot::train
