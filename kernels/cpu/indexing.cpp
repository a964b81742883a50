// CPU indexing kernels (see kernels/indexing.h, which also holds the device-independent cat):
// index_select as a row gather, its backward as a scatter-add where each thread owns a fixed set of
// destination columns, and where/masked_fill as broadcasting strided loops.
#include "kernels/indexing.h"

#include <algorithm>
#include <cstring>

#include "core/dispatch.h"
#include "kernels/cpu/loops.h"
#include "kernels/elementwise.h"

namespace knot::kernels::cpu {
namespace {

// fn(out_index, offset_cond, offset_a, offset_b) for every element of `shape`, rows in parallel
// (the three-input sibling of for_each_2).
template <typename F>
void for_each_3(const Shape& shape, const Shape& sc, int64_t oc, const Shape& sa, int64_t oa, const Shape& sb,
                int64_t ob, F&& fn) {
  const int nd = static_cast<int>(shape.size());
  const int64_t n = shape_numel(shape);
  if (n == 0) return;
  if (nd == 0) { fn(0, oc, oa, ob); return; }
  const int64_t inner = shape[nd - 1], ic = sc[nd - 1], ia = sa[nd - 1], ib = sb[nd - 1];
  const int64_t rows = n / inner;
  parallel_for(rows, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(inner, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t rem = r, pc = oc, pa = oa, pb = ob;
      for (int d = nd - 2; d >= 0; --d) {
        const int64_t i = rem % shape[d];
        rem /= shape[d];
        pc += i * sc[d];
        pa += i * sa[d];
        pb += i * sb[d];
      }
      const int64_t base = r * inner;
      for (int64_t j = 0; j < inner; ++j) fn(base + j, pc + j * ic, pa + j * ia, pb + j * ib);
    }
  });
}

}  // namespace

Tensor index_select(const Tensor& x_in, int dim, const Tensor& index) {
  const Tensor x = dense(x_in);
  const SelectPlan p = select_plan(x.shape(), dim, index.numel());
  const int64_t n = p.n, m = p.m, outer = p.outer, inner = p.inner;
  const std::vector<int64_t> idx = select_indices(index, dim, n);
  Tensor out = empty(p.selected_shape, x.dtype());
  dispatch_all(x.dtype(), "index_select", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    // rows of the output (o, i), each a contiguous run of `inner` elements
    parallel_for(outer * m, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(inner, 1)),
                 [&](int64_t r0, int64_t r1) {
                   for (int64_t r = r0; r < r1; ++r) {
                     const int64_t o = r / m, i = r % m;
                     const T* src = px + (o * n + idx[i]) * inner;
                     std::copy(src, src + inner, po + r * inner);
                   }
                 });
  });
  return out;
}

Tensor index_select_bwd(const Tensor& g_in, int dim, const Tensor& index, int64_t src_size) {
  const Tensor g = dense(g_in);
  const SelectPlan p = select_bwd_plan(g.shape(), dim, index.numel(), src_size);
  const int64_t m = p.m, n = p.n, outer = p.outer, inner = p.inner;
  const std::vector<int64_t> idx = select_indices(index, dim, n);
  Tensor gx = zeros(p.source_shape, g.dtype());
  dispatch_float(g.dtype(), "index_select", [&](auto tag) {
    using T = decltype(tag);
    const T* pg = g.data<T>();
    T* px = gx.data<T>();
    // Threads split the (outer, inner) "columns"; a column of gx is only ever written by the thread
    // that owns it, and it adds the source rows in increasing i, so repeated indices sum in a fixed
    // order whatever the thread count.
    const int64_t cols = outer * inner;
    parallel_for(cols, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(m, 1)), [&](int64_t b, int64_t e) {
      for (int64_t o = b / inner; o * inner < e; ++o) {
        const int64_t c0 = std::max(b, o * inner) - o * inner, c1 = std::min(e, (o + 1) * inner) - o * inner;
        for (int64_t i = 0; i < m; ++i) {
          T* dst = px + (o * n + idx[i]) * inner;
          const T* src = pg + (o * m + i) * inner;
          for (int64_t c = c0; c < c1; ++c) dst[c] += src[c];
        }
      }
    });
  });
  return gx;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  const Shape out_shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = empty(out_shape, a.dtype());
  dispatch_all(cond.dtype(), "where", [&](auto ctag) {
    using C = decltype(ctag);
    dispatch_all(a.dtype(), "where", [&](auto tag) {
      using T = decltype(tag);
      const C* bc = static_cast<const C*>(cond.storage()->data);
      const T* ba = static_cast<const T*>(a.storage()->data);
      const T* bb = static_cast<const T*>(b.storage()->data);
      T* po = out.data<T>();
      for_each_3(out_shape, broadcast_strides(cond, out_shape), cond.offset(), broadcast_strides(a, out_shape),
                 a.offset(), broadcast_strides(b, out_shape), b.offset(),
                 [&](int64_t i, int64_t oc, int64_t oa, int64_t ob) { po[i] = bc[oc] != C(0) ? ba[oa] : bb[ob]; });
    });
  });
  return out;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  Tensor out = empty(x.shape(), x.dtype());
  dispatch_all(mask.dtype(), "masked_fill", [&](auto mtag) {
    using M = decltype(mtag);
    dispatch_all(x.dtype(), "masked_fill", [&](auto tag) {
      using T = decltype(tag);
      const T* bx = static_cast<const T*>(x.storage()->data);
      const M* bm = static_cast<const M*>(mask.storage()->data);
      T* po = out.data<T>();
      const T v = static_cast<T>(value);
      for_each_2(x.shape(), x.strides(), x.offset(), broadcast_strides(mask, x.shape()), mask.offset(),
                 [&](int64_t i, int64_t ox, int64_t om) { po[i] = bm[om] != M(0) ? v : bx[ox]; });
    });
  });
  return out;
}

}  // namespace knot::kernels::cpu
