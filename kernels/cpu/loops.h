// CPU loop helpers: parallel ranges on knot's thread pool (kernels/cpu/thread_pool.h) and
// broadcast-aware strided iteration.
// Threads: KNOT_NUM_THREADS (default: all cores), read at first use (kernels/cpu/threads.cpp); every
// compute thread flushes denormals to zero (KNOT_FLUSH_DENORMALS=0: not).
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/shape.h"
#include "core/tensor.h"
#include "core/runtime.h"
#include "kernels/cpu/thread_pool.h"

namespace knot {
namespace kernels::cpu {

// Below this many elements a loop stays on one thread (thread start-up costs more than it saves).
constexpr int64_t kParallelGrain = 32768;

// Chunks per thread of a parallel_for: with more chunks than threads the running threads take over
// the chunks of one the OS has descheduled instead of waiting for it.
constexpr int64_t kChunksPerThread = 4;

// fn(begin, end) over [0, n) split into contiguous chunks run on the thread pool: n <= grain (or one
// thread, or inside another parallel loop) runs fn(0, n) on the calling thread; else up to
// kChunksPerThread x num_threads() chunks of at least grain elements each (two at least). fn must
// write disjoint outputs per index (then results do not depend on the split or the thread count).
template <typename F>
void parallel_for(int64_t n, int64_t grain, F&& fn) {
  if (n <= 0) return;
  const int64_t nt = num_threads();
  if (n <= grain || nt == 1 || in_parallel_region()) {
    fn(int64_t{0}, n);
    return;
  }
  const int64_t want = std::clamp<int64_t>(n / std::max<int64_t>(grain, 1), 2, kChunksPerThread * nt);
  const int64_t chunk = (n + want - 1) / want, nchunks = (n + chunk - 1) / chunk;
  parallel_chunks(nchunks, [&](int64_t c) { fn(c * chunk, std::min(n, (c + 1) * chunk)); });
}

// GEMMs on the pool: C = A·B cut into blocks of output rows, one single-threaded GEMM each (an
// OpenMP-threaded GEMM waits at OpenMP's barriers for a descheduled thread, and its idle threads
// spin on the cores the pool's threads need). A block has at least kGemmBlockRows rows and about
// kGemmBlockMacs multiply-adds: a function of (M, N, K) alone, so each row's sums do not depend on
// the thread count.
constexpr int64_t kGemmBlockRows = 32;
constexpr int64_t kGemmBlockMacs = int64_t{1} << 21;

// fn(r0, r1) for every block of rows of an M x N output with inner dimension K, in parallel, with
// OpenMP's thread count 1 meanwhile (on the calling thread too: one block runs inline).
template <typename F>
void parallel_gemm_rows(int64_t M, int64_t N, int64_t K, F&& fn) {
  if (M <= 0) return;
  const int64_t rows = std::max(kGemmBlockRows, kGemmBlockMacs / std::max<int64_t>(1, N * K));
  const int64_t nblocks = (M + rows - 1) / rows;
  SerialGemmScope serial;
  parallel_for(nblocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) fn(b * rows, std::min(M, (b + 1) * rows));
  });
}

// dense(x) (x itself when contiguous, else a contiguous copy) is kernels::dense, kernels/dispatch.h.

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
