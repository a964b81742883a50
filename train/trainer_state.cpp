// The trainer's state and metrics file (see trainer_state.h).
#include "train/trainer_state.h"

#include <cmath>
#include <fstream>

#include "core/rng.h"
#include "data/jsonl.h"  // write_file_atomic

namespace knot::train {

models::Json TrainerState::to_json(const std::string& task, const std::string& best_metric, int64_t batches_per_epoch,
                                   int64_t optimizer_steps) const {
  const Generator& dg = default_generator();
  return models::Json{{"task", task},
                      {"step", step},
                      {"micro_batch", micro},
                      {"epoch", micro / batches_per_epoch},
                      {"batch_in_epoch", micro % batches_per_epoch},
                      {"skipped_steps", skipped},
                      {"window_count", win_count},
                      {"window_tokens", win_tokens},
                      {"window_loss", win_loss},
                      {"best", std::isfinite(best) ? models::Json(best) : models::Json()},
                      {"best_metric", best_metric},
                      {"last_validation", last_val},
                      {"optimizer_steps", optimizer_steps},
                      {"rng", {{"default", {{"seed", dg.seed()}, {"draws", dg.draws()}}}}}};
}

void TrainerState::restore(const models::Json& s) {
  step = s.at("step").get<int64_t>();
  micro = s.at("micro_batch").get<int64_t>();
  skipped = s.at("skipped_steps").get<int64_t>();
  win_count = s.at("window_count").get<int64_t>();
  win_tokens = s.at("window_tokens").get<int64_t>();
  win_loss = s.at("window_loss").get<double>();
  best = s.at("best").is_null() ? std::numeric_limits<double>::infinity() : s.at("best").get<double>();
  last_val = s.value("last_validation", models::Json());
  const auto& g = s.at("rng").at("default");
  default_generator().set_state({g.at("seed").get<uint64_t>(), g.at("draws").get<uint64_t>()});
}

void truncate_metrics(const std::filesystem::path& path, int64_t max_step) {
  if (!std::filesystem::exists(path)) return;
  std::ifstream in(path);
  std::string line, kept;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    models::Json j;
    try {
      j = models::Json::parse(line);
    } catch (const std::exception&) {
      break;  // a line cut by a kill: drop it and what follows
    }
    // A line that is not a step record (edited by hand, cut by a kill) ends what is kept.
    if (!j.is_object() || !j.contains("step") || !j["step"].is_number_integer()) break;
    if (j["step"].get<int64_t>() > max_step) break;
    kept += line + "\n";
  }
  data::write_file_atomic(path.string(), kept);
}

}  // namespace knot::train
