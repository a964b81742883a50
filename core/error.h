// knot::Error and the KNOT_CHECK macro. Every error names the op and the offending
// shapes or values, e.g. "matmul: inner dims differ: (4, 3) x (5, 2)".
#pragma once

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <stdexcept>
#include <string>

namespace knot {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace knot

// KNOT_CHECK(cond, "op: message {}", args...) throws knot::Error with the formatted text.
#define KNOT_CHECK(cond, ...)                                 \
  do {                                                        \
    if (!(cond)) throw ::knot::Error(fmt::format(__VA_ARGS__)); \
  } while (0)

#define KNOT_FAIL(...) throw ::knot::Error(fmt::format(__VA_ARGS__))
