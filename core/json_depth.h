// A nesting limit for JSON read from files. nlohmann parses any depth, but copying or printing a
// value recurses once per level, so a file of a million '[' (a few MB) overflows the stack the first
// time a reader copies the value or names it in an error. knot's files nest a few levels deep.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "core/error.h"

namespace knot {

inline constexpr int kMaxJsonDepth = 128;

// A parser callback for nlohmann::json::parse(text, cb) that throws knot::Error, naming `what`,
// at the first value nested deeper than max_depth.
inline auto json_depth_limit(std::string what, int max_depth = kMaxJsonDepth) {
  return [what = std::move(what), max_depth](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
    KNOT_CHECK(depth <= max_depth, "{}: JSON nested deeper than {} levels", what, max_depth);
    return true;
  };
}

}  // namespace knot
