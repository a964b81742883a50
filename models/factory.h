// Builds a model from its config JSON ("model": "encoder_decoder", "decoder_only" or "electra") and prints a
// parameter table (what `knot params CONFIG` shows).
#pragma once

#include <memory>
#include <string>

#include "models/config.h"
#include "nn/module.h"

namespace knot::models {

// Errors name the unknown model kind and, through the configs, any unknown key or wrong type.
std::shared_ptr<nn::Module> build_model(const Json& cfg);
// One row per module up to `max_depth` dots deep ("encoder.layers.0" is depth 3), with its
// parameter count, then the total: "total  21,858,816".
std::string parameter_table(const nn::Module& m, int max_depth = 2);

}  // namespace knot::models
