// Learning-rate schedules, as a pure function of the 1-based optimizer step (so a resumed run
// recomputes the same rate without saving any schedule state).
//
//   constant        lr
//   noam            lr · d_model^-0.5 · min(step^-0.5, step · warmup^-1.5)   (Vaswani et al. 2017, §5.3;
//                   with lr = 1 this is the paper's formula exactly)
//   linear          warm-up: lr · step / warmup for step <= warmup, then linear decay from lr to
//                   min_lr at total_steps
//   cosine          the same warm-up, then min_lr + (lr - min_lr) · ½(1 + cos(π · progress))
// progress = (step - warmup) / (total_steps - warmup), clamped to [0, 1].
//
// Config (the "schedule" object of the train config; every key optional):
//   {"kind": "constant" | "noam" | "linear" | "cosine", "warmup_steps": 0, "min_lr": 0.0,
//    "d_model": 0 (noam: 0 -> the model's embedding_dim)}
#pragma once

#include <cstdint>
#include <string>

#include "models/config.h"

namespace knot::train {

struct Schedule {
  std::string kind = "constant";
  double lr = 1e-3;          // peak / base rate
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;   // where linear/cosine decay reach min_lr
  double min_lr = 0.0;
  int64_t d_model = 512;     // noam only

  // step >= 1 (step 0 is treated as 1).
  double at(int64_t step) const;

  // Reads the "schedule" object; lr and total_steps come from the train config. Errors name the key.
  static Schedule from_json(const models::Json& j, double lr, int64_t total_steps, int64_t d_model);
  models::Json to_json() const;
};

}  // namespace knot::train
