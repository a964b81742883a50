// Model-config helpers over the config reader of core/config.h (the file loading, overrides and
// ConfigReader live there; they are named here too, as the models and trainers have always used them).
#pragma once

#include <string>

#include "core/config.h"
#include "nn/layers.h"

namespace knot::models {

using Json = config::Json;
using config::apply_override;
using config::apply_overrides;
using config::load_json_file;
using config::parse_json_text;
using config::save_json_file;
using ConfigReader = config::Reader;

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
