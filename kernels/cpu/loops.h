// CPU loop helpers: OpenMP parallel ranges and broadcast-aware strided iteration.
// Threads: KNOT_NUM_THREADS (default: all cores), read once at start-up (kernels/cpu/threads.cpp),
// which also makes every compute thread flush denormals to zero (KNOT_FLUSH_DENORMALS=0: not).
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "core/shape.h"
#include "core/tensor.h"
#include "core/threads.h"

namespace knot {
namespace kernels::cpu {

// Below this many elements a loop stays on one thread (thread start-up costs more than it saves).
constexpr int64_t kParallelGrain = 32768;

// fn(begin, end) over [0, n) split into contiguous chunks, one per thread.
template <typename F>
void parallel_for(int64_t n, int64_t grain, F&& fn) {
  if (n <= 0) return;
  if (n <= grain || omp_get_max_threads() == 1 || omp_in_parallel()) {
    fn(int64_t{0}, n);
    return;
  }
#pragma omp parallel
  {
    const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t chunk = (n + nt - 1) / nt;
    const int64_t b = std::min(n, t * chunk), e = std::min(n, b + chunk);
    if (b < e) fn(b, e);
  }
}

// x itself when contiguous, else a contiguous copy on the host. Kernels use this rather than
// Tensor::contiguous(), which goes through the op layer and could record a graph node nobody needs.
Tensor dense(const Tensor& x);

// Strides of `t` viewed at `out` shape under broadcasting (0 where t's dim is 1 or missing).
inline Shape broadcast_strides(const Tensor& t, const Shape& out) {
  Shape st(out.size(), 0);
  const size_t off = out.size() - t.shape().size();
  for (size_t i = 0; i < t.shape().size(); ++i)
    st[off + i] = t.shape()[i] == 1 ? 0 : t.strides()[i];
  return st;
}

// Calls fn(out_index, offset_a, offset_b) for every element of `shape`, rows in parallel; the
// offsets are element offsets into a and b computed from their (broadcast) strides.
template <typename F>
void for_each_2(const Shape& shape, const Shape& sa, int64_t oa, const Shape& sb, int64_t ob, F&& fn) {
  const int nd = static_cast<int>(shape.size());
  const int64_t n = shape_numel(shape);
  if (n == 0) return;
  if (nd == 0) { fn(0, oa, ob); return; }
  const int64_t inner = shape[nd - 1], ia = sa[nd - 1], ib = sb[nd - 1];
  const int64_t rows = n / inner;
  parallel_for(rows, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(inner, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t rem = r, pa = oa, pb = ob;
      for (int d = nd - 2; d >= 0; --d) {
        const int64_t i = rem % shape[d];
        rem /= shape[d];
        pa += i * sa[d];
        pb += i * sb[d];
      }
      const int64_t base = r * inner;
      for (int64_t j = 0; j < inner; ++j) fn(base + j, pa + j * ia, pb + j * ib);
    }
  });
}

}  // namespace kernels::cpu
}  // namespace knot
