// The trainer's own state between steps (what trainer_state.json holds next to a checkpoint's
// weights and optimizer) and the run's metrics file: saved and restored here, so that a resumed run
// continues bit for bit where the checkpoint left it (train/trainer.h).
#pragma once

#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>

#include "models/config.h"

namespace knot::train {

struct TrainerState {
  int64_t step = 0;         // optimizer steps done (skipped ones included)
  int64_t micro = 0;        // micro-batches drawn: epoch = micro / batches_per_epoch
  int64_t skipped = 0;      // steps skipped for a NaN/Inf loss or gradient
  int64_t win_count = 0;    // steps in the current logging window ...
  int64_t win_tokens = 0;   // ... their tokens ...
  double win_loss = 0;      // ... and the sum of their mean losses
  double best = std::numeric_limits<double>::infinity();  // best validation value of the task's metric
  models::Json last_val;    // the last validation row

  // trainer_state.json: this state, the task's name and best metric, epoch and batch, the optimizer's
  // step count and the default generator's position.
  models::Json to_json(const std::string& task, const std::string& best_metric, int64_t batches_per_epoch,
                       int64_t optimizer_steps) const;
  // Restores the state and the default generator from a validated trainer_state.json (see
  // validate_trainer_state in trainer.h).
  void restore(const models::Json& s);
};

// Keeps the lines of metrics.jsonl whose "step" is <= max_step (a resumed run rewrites the rest); a
// line cut by a kill, or one that is not a step record, ends what is kept.
void truncate_metrics(const std::filesystem::path& path, int64_t max_step);

}  // namespace knot::train
