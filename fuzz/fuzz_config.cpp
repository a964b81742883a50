// libFuzzer target: a config file plus `key.sub=value` overrides (models/config.h), then the
// config readers that check them (model, train and schedule sections).
// Input: override lines, a line "---", then the JSON text (no "---" line: all of it is JSON).
#include <vector>

#include "fuzz/fuzz.h"
#include "models/config.h"
#include "models/electra.h"
#include "models/encoder_decoder.h"
#include "train/schedule.h"
#include "train/trainer.h"

using knot::models::Json;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto in = knot::fuzz::bytes(data, size);
  std::vector<std::string> overrides;
  std::string_view text = in;
  if (const size_t sep = in.find("\n---\n"); sep != std::string_view::npos) {
    text = in.substr(sep + 5);
    std::string_view head = in.substr(0, sep);
    while (!head.empty()) {
      const size_t nl = head.find('\n');
      overrides.emplace_back(head.substr(0, nl));
      head = nl == std::string_view::npos ? std::string_view() : head.substr(nl + 1);
    }
  }
  Json cfg;
  if (!knot::fuzz::accepts([&] { cfg = knot::models::parse_json_text(text, "fuzz.json"); })) return 0;
  for (const auto& o : overrides) knot::fuzz::accepts([&] { knot::models::apply_override(cfg, o); });
  if (!cfg.is_object()) return 0;
  const Json model = cfg.contains("model") ? cfg["model"] : Json();
  const Json train = cfg.contains("train") ? cfg["train"] : Json();
  knot::fuzz::accepts([&] { knot::models::EncoderDecoderConfig::from_json(model); });
  knot::fuzz::accepts([&] { knot::models::ElectraConfig::from_json(model); });
  knot::fuzz::accepts([&] {
    if (model.is_object() && model.contains("projection")) knot::models::read_projection(model["projection"], "model.projection");
  });
  knot::fuzz::accepts([&] {
    const auto tc = knot::train::TrainerConfig::from_json(train);
    knot::train::Schedule::from_json(tc.schedule, tc.lr, tc.steps, 64);
  });
  // The generic reader: every key read as each type, then finish().
  knot::fuzz::accepts([&] {
    knot::models::ConfigReader r(cfg, "fuzz");
    for (auto it = cfg.begin(); it != cfg.end(); ++it) {
      knot::fuzz::accepts([&] { r.get<bool>(it.key(), false); });
      knot::fuzz::accepts([&] { r.get<int64_t>(it.key(), 0); });
      knot::fuzz::accepts([&] { r.get<double>(it.key(), 0.0); });
      knot::fuzz::accepts([&] { r.get<std::string>(it.key(), ""); });
    }
    r.finish();
  });
  return 0;
}
