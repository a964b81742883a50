// libFuzzer target: a config file plus `key.sub=value` overrides (models/config.h), then
// ConfigReader's checked reads over the result, every key as every type, nested objects too.
// Input: override lines, a line "---", then the JSON text (no "---" line: all of it is JSON).
#include <functional>
#include <vector>

#include "fuzz/fuzz.h"
#include "models/config.h"

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
  // Every object, as the model, train and data readers walk them: each key read as each type (a
  // wrong type is a knot::Error naming the key), sub-objects recursively, then finish() on a reader
  // that knows only some keys (the unknown ones are a knot::Error with a "did you mean" hint).
  std::function<void(const Json&, const std::string&, int)> walk = [&](const Json& j, const std::string& ctx, int depth) {
    if (!j.is_object() || depth > 8) return;
    knot::models::ConfigReader r(j, ctx);
    bool odd = false;
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& key = it.key();
      knot::fuzz::accepts([&] { r.get<bool>(key, false); });
      knot::fuzz::accepts([&] { r.get<int64_t>(key, 0); });
      knot::fuzz::accepts([&] { r.get<double>(key, 0.0); });
      knot::fuzz::accepts([&] { r.get<std::string>(key, ""); });
      knot::fuzz::accepts([&] { r.require<std::string>(key + "_"); });
      if (!(odd = !odd)) knot::models::ConfigReader(j, ctx).get<Json>(key, Json());
      walk(*it, ctx + "." + key, depth + 1);
    }
    knot::fuzz::accepts([&] {
      knot::models::ConfigReader partial(j, ctx);
      if (!j.empty()) partial.ignore(j.begin().key());
      partial.finish();
    });
  };
  walk(cfg, "fuzz", 0);
  return 0;
}
