// Test helpers: tensor comparison and a gradcheck assertion.
#pragma once

#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include "autograd/gradcheck.h"
#include "core/allocator.h"
#include "ops/ops.h"

namespace knot::test {

// Max |a - b| over all elements (shapes must match).
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i) m = std::max(m, std::abs(va[i] - vb[i]));
  return m;
}

inline bool all_close(const Tensor& a, const Tensor& b, double atol = 1e-6, double rtol = 1e-5) {
  if (a.shape() != b.shape()) return false;
  const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  for (size_t i = 0; i < va.size(); ++i)
    if (!(std::abs(va[i] - vb[i]) <= atol + rtol * std::abs(vb[i]))) return false;
  return true;
}

// f64 leaf with values drawn from a fixed seed.
inline Tensor rand_leaf(const Shape& s, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  Generator g(seed);
  Tensor t = rand(s, DType::f64, &g, lo, hi);
  t.requires_grad_();
  return t;
}

#define REQUIRE_GRADCHECK(fn, inputs, ...)                                   \
  do {                                                                      \
    const std::string knot_gc_msg = ::knot::gradcheck(fn, inputs, ##__VA_ARGS__); \
    INFO(knot_gc_msg);                                                      \
    REQUIRE(knot_gc_msg.empty());                                           \
  } while (0)

}  // namespace knot::test
