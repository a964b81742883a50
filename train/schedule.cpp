// Learning-rate schedules (see schedule.h).
#include "train/schedule.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace knot::train {

double Schedule::at(int64_t step) const {
  const double s = static_cast<double>(std::max<int64_t>(step, 1));
  if (kind == "constant") return lr;
  if (kind == "noam") {
    const double w = static_cast<double>(std::max<int64_t>(warmup_steps, 1));
    return lr * std::pow(static_cast<double>(d_model), -0.5) * std::min(std::pow(s, -0.5), s * std::pow(w, -1.5));
  }
  if (warmup_steps > 0 && s <= static_cast<double>(warmup_steps)) return lr * s / static_cast<double>(warmup_steps);
  const double span = static_cast<double>(std::max<int64_t>(total_steps - warmup_steps, 1));
  const double progress = std::clamp((s - static_cast<double>(warmup_steps)) / span, 0.0, 1.0);
  if (kind == "linear") return lr + (min_lr - lr) * progress;
  if (kind == "cosine") return min_lr + (lr - min_lr) * 0.5 * (1.0 + std::cos(M_PI * progress));
  KNOT_FAIL("schedule: unknown kind '{}'", kind);
}

Schedule Schedule::from_json(const models::Json& j, double lr, int64_t total_steps, int64_t d_model) {
  Schedule s;
  s.lr = lr;
  s.total_steps = total_steps;
  s.d_model = d_model;
  if (j.is_null()) return s;
  if (j.is_string()) {
    s.kind = j.get<std::string>();
  } else {
    models::ConfigReader r(j, "train.schedule");
    s.kind = r.get<std::string>("kind", s.kind, "\"constant\", \"noam\", \"linear\" (warm-up, linear decay) or \"cosine\" (warm-up, cosine decay)");
    s.warmup_steps = r.get<int64_t>("warmup_steps", s.warmup_steps, "steps of linear warm-up");
    s.min_lr = r.get<double>("min_lr", s.min_lr, "the learning rate the decay ends at (linear, cosine)");
    const int64_t dm = r.get<int64_t>("d_model", 0, "noam: the model width in the formula (0 = the model's)");
    if (dm > 0) s.d_model = dm;
    r.finish();
  }
  KNOT_CHECK(s.kind == "constant" || s.kind == "noam" || s.kind == "linear" || s.kind == "cosine",
             "config 'train.schedule': key 'kind' must be constant, noam, linear or cosine, got '{}'", s.kind);
  KNOT_CHECK(s.warmup_steps >= 0, "config 'train.schedule': key 'warmup_steps' must be >= 0, got {}", s.warmup_steps);
  KNOT_CHECK(s.kind != "noam" || s.warmup_steps > 0, "config 'train.schedule': key 'warmup_steps' must be > 0 for noam");
  KNOT_CHECK(s.d_model > 0, "config 'train.schedule': key 'd_model' must be > 0");
  return s;
}

models::Json Schedule::to_json() const {
  return {{"kind", kind}, {"warmup_steps", warmup_steps}, {"min_lr", min_lr}, {"d_model", d_model}};
}

}  // namespace knot::train
