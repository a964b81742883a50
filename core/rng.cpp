// Random tensors from the counter-based Philox generator (see rng.h).
#include "core/rng.h"

#include <cmath>

#include "core/dispatch.h"
#include "core/runtime.h"  // host_parallel_for

namespace knot {

// Elements below which a draw stays on one thread (each element is a Philox block, ~10 ns).
constexpr int64_t kElementGrain = 65536;

Generator& default_generator() {
  static Generator g(0);
  return g;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

namespace {
int64_t g_batch_first = 0, g_batch_rows = 0;  // set_batch_rows; rows 0 = the whole batch
}  // namespace

void set_batch_rows(int64_t first, int64_t rows) {
  KNOT_CHECK(first >= 0 && rows >= 0, "set_batch_rows: first {} and rows {} must be >= 0", first, rows);
  g_batch_first = rows > 0 ? first : 0;
  g_batch_rows = rows;
}

uint64_t batch_element_offset(const Tensor& x) { return batch_element_offset(x.numel(), x.shape()); }

uint64_t batch_element_offset(int64_t n, const Shape& shape) {
  if (g_batch_rows == 0 || g_batch_first == 0) return 0;
  KNOT_CHECK(n % g_batch_rows == 0,
             "data parallelism: a dropout input of shape {} does not split into this rank's {} batch rows (dropout "
             "masks are keyed by the row in the global batch, so the leading dimensions must be the batch)",
             shape_str(shape), g_batch_rows);
  return static_cast<uint64_t>(g_batch_first) * static_cast<uint64_t>(n / g_batch_rows);
}

Tensor rand(const Shape& s, DType dtype, Generator* gen, double lo, double hi) {
  Generator& g = gen ? *gen : default_generator();
  const uint64_t seed = g.seed(), draw = g.next_draw();
  Tensor t = empty(s, dtype);
  dispatch_float(dtype, "rand", [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    const int64_t n = t.numel();
    const T top = hi > lo ? std::nextafter(static_cast<T>(hi), static_cast<T>(lo)) : static_cast<T>(hi);
    host_parallel_for(n, kElementGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const Philox4 r = philox_element(seed, draw, static_cast<uint64_t>(i));
        const double u = sizeof(T) == 4 ? static_cast<double>(uniform_f32(r)) : uniform_f64(r);
        // u < 1, but lo + (hi - lo)·u can round up to hi in T; keep the interval half-open.
        const T v = static_cast<T>(lo + (hi - lo) * u);
        p[i] = v < top ? v : top;
      }
    });
  });
  return t;
}

Tensor randn(const Shape& s, DType dtype, Generator* gen, double mean, double std) {
  Generator& g = gen ? *gen : default_generator();
  const uint64_t seed = g.seed(), draw = g.next_draw();
  Tensor t = empty(s, dtype);
  dispatch_float(dtype, "randn", [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    const int64_t n = t.numel();
    host_parallel_for(n, kElementGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        p[i] = static_cast<T>(mean + std * normal_f64(philox_element(seed, draw, static_cast<uint64_t>(i))));
    });
  });
  return t;
}

Tensor randint(int64_t lo, int64_t hi, const Shape& s, DType dtype, Generator* gen) {
  KNOT_CHECK(hi > lo, "randint: empty range [{}, {})", lo, hi);
  Generator& g = gen ? *gen : default_generator();
  const uint64_t seed = g.seed(), draw = g.next_draw();
  const uint64_t range = static_cast<uint64_t>(hi - lo);
  Tensor t = empty(s, dtype);
  dispatch_index(dtype, "randint", [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i) {
      const Philox4 r = philox_element(seed, draw, static_cast<uint64_t>(i));
      const uint64_t bits = (static_cast<uint64_t>(r.v[0]) << 32) | r.v[1];
      p[i] = static_cast<T>(lo + static_cast<int64_t>(bits % range));
    }
  });
  return t;
}

}  // namespace knot
