// Shared by the libFuzzer targets (fuzz_*.cpp; how they run: docs/reliability.md).
// A reader given hostile bytes may only answer with knot::Error, whose text names the problem.
// Anything else escaping a target (a nlohmann exception, std::bad_alloc, std::out_of_range) ends
// in std::terminate, which libFuzzer reports as a crash, as it does sanitizer reports and
// FUZZ_CHECK failures (a reader that accepted the input but broke one of its own promises).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/error.h"

#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

namespace knot::fuzz {

inline std::string_view bytes(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Runs f; a knot::Error is the expected answer to bad input and is swallowed (its text must not
// be empty: an error has to say something). Returns whether f finished without one.
template <class F>
bool accepts(F&& f) {
  try {
    f();
    return true;
  } catch (const knot::Error& e) {
    FUZZ_CHECK(e.what()[0] != '\0');
    return false;
  }
}

}  // namespace knot::fuzz
