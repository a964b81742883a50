// Model configs: JSON files (nlohmann/json) with Hydra-like `key.sub=value` overrides.
//
//   load_json_file("configs/kanformer-mlp.json")      parse errors name the file, line and column
//   apply_override(cfg, "projection.kind=kan_bspline")  value parsed as JSON (else taken as a
//                                                      string); an existing key keeps its JSON type
//   apply_override(cfg, "activation_checkpointing=true") a key the file leaves out is added (Hydra's
//                                                      '+key=...' is accepted too): the configs are
//                                                      checked by their readers, which know every
//                                                      key, as Hydra's structured configs do
//   ConfigReader r(cfg, "kanformer"); r.get<int64_t>("num_heads", 8); ...; r.finish();
//                                                      wrong types and unknown keys are errors
//                                                      naming the key
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "nn/layers.h"

namespace knot::models {

using Json = nlohmann::json;

Json load_json_file(const std::string& path);
// The same parse over text in memory; `name` stands for the file in errors.
Json parse_json_text(std::string_view text, const std::string& name = "<memory>");
void save_json_file(const std::string& path, const Json& j);
void apply_override(Json& cfg, const std::string& assignment);
void apply_overrides(Json& cfg, const std::vector<std::string>& assignments);

// Typed, checked reads from one JSON object. `context` names the object in errors
// ("kanformer", "electra.generator").
class ConfigReader {
 public:
  ConfigReader(const Json& j, std::string context);
  // Value of `key`, or `fallback` when absent. T: bool, int64_t, double, std::string, Json.
  template <typename T> T get(const std::string& key, const T& fallback);
  template <typename T> T require(const std::string& key);
  bool has(const std::string& key) const { return j_.contains(key); }
  // Throws when the object holds a key that no get/require/ignore asked for.
  void finish() const;
  void ignore(const std::string& key) { known_.insert(key); }
  const std::string& context() const { return ctx_; }

 private:
  template <typename T> T convert(const std::string& key, const Json& v) const;
  Json j_;  // a copy: readers are often built from temporaries (r.get<Json>("sub"))
  std::string ctx_;
  std::set<std::string> known_;
};

// {"kind": "kan_bspline", "options": {...}} (or just "mlp") -> ProjectionSpec; checks the kind.
nn::ProjectionSpec read_projection(const Json& j, const std::string& context);

// A Transformer's projections: `projection` (every site; "mlp" when absent) and `projections`
// ({"attention": …, "ffn": …, "output": …}, each optional) of the model config read by `r`, whose
// context names them in errors ("decoder_only.projections.ffn").
struct ProjectionSites {
  nn::ProjectionSpec all, attention, ffn, output;
};
ProjectionSites read_projection_sites(ConfigReader& r);

}  // namespace knot::models
