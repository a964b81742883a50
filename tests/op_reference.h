// Host-side helpers for the per-op tests: leaves with chosen values, a row-major index walker and
// NumPy broadcasting on plain std::vector<double>, so references never go through the engine.
#pragma once

#include <cmath>
#include <functional>
#include <vector>

#include "tests/helpers.h"

namespace knot::test {

// n values in [lo, hi) from a fixed seed, each moved at least `margin` away from every kink
// (finite differences across a kink are meaningless).
inline std::vector<double> values_away_from(int64_t n, uint64_t seed, double lo, double hi,
                                            const std::vector<double>& kinks = {}, double margin = 0.05) {
  Generator g(seed);
  std::vector<double> v = rand({n}, DType::f64, &g, lo, hi).to_vector<double>();
  for (double& x : v)
    for (double k : kinks)
      if (std::abs(x - k) < margin) x = k + (x >= k ? 2 * margin : -2 * margin);
  return v;
}

// f64 leaf that requires grad, with the given values.
inline Tensor leaf(const std::vector<double>& v, const Shape& s) {
  Tensor t = from_vector(v, s);
  t.requires_grad_();
  return t;
}

inline Tensor leaf_in(const Shape& s, uint64_t seed, double lo, double hi, const std::vector<double>& kinks = {}) {
  return leaf(values_away_from(shape_numel(s), seed, lo, hi, kinks), s);
}

// Multi-index of flat row-major position i in shape s.
inline std::vector<int64_t> unravel(int64_t i, const Shape& s) {
  std::vector<int64_t> idx(s.size());
  for (int d = static_cast<int>(s.size()) - 1; d >= 0; --d) {
    idx[d] = s[d] ? i % s[d] : 0;
    if (s[d]) i /= s[d];
  }
  return idx;
}

// Flat row-major position in `s` of the broadcast index `out_idx` (aligned to the right).
inline int64_t broadcast_flat(const std::vector<int64_t>& out_idx, const Shape& s) {
  const size_t lead = out_idx.size() - s.size();
  int64_t f = 0;
  for (size_t d = 0; d < s.size(); ++d) f = f * s[d] + (s[d] == 1 ? 0 : out_idx[lead + d]);
  return f;
}

inline Shape host_broadcast(const Shape& a, const Shape& b) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// out[i] = f(a[bcast i], b[bcast i]) over the broadcast shape of a and b.
inline std::vector<double> broadcast_ref(const std::vector<double>& a, const Shape& sa, const std::vector<double>& b,
                                         const Shape& sb, const std::function<double(double, double)>& f) {
  const Shape so = host_broadcast(sa, sb);
  std::vector<double> out(static_cast<size_t>(shape_numel(so)));
  for (int64_t i = 0; i < shape_numel(so); ++i) {
    const auto idx = unravel(i, so);
    out[i] = f(a[broadcast_flat(idx, sa)], b[broadcast_flat(idx, sb)]);
  }
  return out;
}

inline void require_close(const std::vector<double>& got, const std::vector<double>& want, double atol = 1e-12,
                          double rtol = 1e-12) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
    REQUIRE(std::abs(got[i] - want[i]) <= atol + rtol * std::abs(want[i]));
  }
}

}  // namespace knot::test
