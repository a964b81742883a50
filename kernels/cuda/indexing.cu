// CUDA indexing kernels (see kernels/indexing.h):
//   cat           device-independent, in kernels/indexing.h (strided copies into slabs of the output);
//   index_select  a gather over (outer, m, inner) with the index read on the device (range-checked
//                 on the host first, with the CPU's message);
//   its backward  deterministic, no atomics: destinations grouped on the host, one thread per
//                 (outer, destination, column) summing its sources in increasing order
//                 (kernels/cuda/segments.cuh) — the CPU's order, so the sums agree bit for bit;
//   where / masked_fill  broadcasting strided loops through the Indexer of common.cuh.
#include <vector>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/segments.cuh"
#include "kernels/elementwise.h"
#include "kernels/indexing.h"

namespace knot::kernels::cuda {
namespace {

using namespace knot::cuda_detail;

template <typename T, typename I>
__global__ void gather_kernel(const T* __restrict__ x, const I* __restrict__ idx, int64_t outer, int64_t n, int64_t m,
                              int64_t inner, T* __restrict__ out) {
  const int64_t total = outer * m * inner;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = e % inner, i = (e / inner) % m, o = e / (inner * m);
    out[e] = x[(o * n + static_cast<int64_t>(idx[i])) * inner + c];
  }
}

template <typename C, typename T>
__global__ void where_kernel(const C* __restrict__ bc, const T* __restrict__ ba, const T* __restrict__ bb, int64_t n,
                             Indexer<3> ix, T* __restrict__ out) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t off[3];
    ix.offsets(i, off);
    out[i] = bc[off[0]] != C(0) ? ba[off[1]] : bb[off[2]];
  }
}

template <typename M, typename T>
__global__ void masked_fill_kernel(const T* __restrict__ bx, const M* __restrict__ bm, int64_t n, Indexer<2> ix, T v,
                                   T* __restrict__ out) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t off[2];
    ix.offsets(i, off);
    out[i] = bm[off[1]] != M(0) ? v : bx[off[0]];
  }
}

template <int N>
Indexer<N> make_indexer(const Shape& out_shape, const Tensor* const (&ts)[N], const bool (&broadcast)[N],
                        const char* op) {
  KNOT_CHECK(static_cast<int>(out_shape.size()) <= kMaxDims, "{}: more than {} dims", op, kMaxDims);
  Indexer<N> ix;
  ix.nd = static_cast<int>(out_shape.size());
  for (int d = 0; d < ix.nd; ++d) ix.size[d] = out_shape[d];
  for (int k = 0; k < N; ++k) {
    const Tensor& t = *ts[k];
    if (broadcast[k]) {
      broadcast_strides_into(t, out_shape, ix.stride[k]);
    } else {
      for (int d = 0; d < ix.nd; ++d) ix.stride[k][d] = t.strides()[d];
    }
    ix.base[k] = t.offset();
  }
  return ix;
}

}  // namespace

Tensor index_select(const Tensor& x_in, int dim, const Tensor& index_in) {
  const char* op = "index_select";
  const Tensor x = dense(x_in), index = dense(index_in);
  const SelectPlan p = select_plan(x.shape(), dim, index.numel());
  const int64_t n = p.n, m = p.m, outer = p.outer, inner = p.inner;
  (void)select_indices(index, dim, n);
  Tensor out = empty(p.selected_shape, x.dtype(), x.device());
  const int64_t total = outer * m * inner;
  if (total == 0) return out;
  const int dev = x.device().index;
  cudaStream_t stream = stream_for(dev, op);
  dispatch_all(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    dispatch_index(index.dtype(), op, [&](auto itag) {
      using I = decltype(itag);
      gather_kernel<T, I><<<grid_for(total, dev), kThreads, 0, stream>>>(x.data<T>(), index.data<I>(), outer, n, m,
                                                                         inner, out.data<T>());
    });
  });
  KNOT_CUDA_LAUNCH_CHECK(op);
  return out;
}

Tensor index_select_bwd(const Tensor& g_in, int dim, const Tensor& index_in, int64_t src_size) {
  const char* op = "index_select backward";
  const Tensor g = dense(g_in), index = dense(index_in);
  const SelectPlan p = select_bwd_plan(g.shape(), dim, index.numel(), src_size);
  const int64_t m = p.m, n = p.n, outer = p.outer, inner = p.inner;
  const std::vector<int64_t> idx = select_indices(index, dim, n);
  Tensor gx = zeros_on(p.source_shape, g.dtype(), g.device(), op);
  const Segments seg = make_segments(idx, n, g.device());
  const int64_t total = outer * seg.nseg * inner;
  if (total == 0) return gx;
  const int dev = g.device().index;
  cudaStream_t stream = stream_for(dev, op);
  dispatch_float(g.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    segment_sum_kernel<T><<<grid_for(total, dev), kThreads, 0, stream>>>(g.data<T>(), seg.table.data<int64_t>(),
                                                                          seg.nseg, outer, inner, m, n, gx.data<T>());
  });
  KNOT_CUDA_LAUNCH_CHECK(op);
  return gx;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  const char* op = "where";
  const Shape out_shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), op), b.shape(), op);
  Tensor out = empty(out_shape, a.dtype(), a.device());
  const int64_t n = out.numel();
  if (n == 0) return out;
  const Tensor* const ts[3] = {&cond, &a, &b};
  const bool bc[3] = {true, true, true};
  const Indexer<3> ix = make_indexer<3>(out_shape, ts, bc, op);
  const int dev = a.device().index;
  cudaStream_t stream = stream_for(dev, op);
  dispatch_all(cond.dtype(), op, [&](auto ctag) {
    using C = decltype(ctag);
    dispatch_all(a.dtype(), op, [&](auto tag) {
      using T = decltype(tag);
      where_kernel<C, T><<<grid_for(n, dev), kThreads, 0, stream>>>(base_ptr<C>(cond), base_ptr<T>(a),
                                                                    base_ptr<T>(b), n, ix, out.data<T>());
    });
  });
  KNOT_CUDA_LAUNCH_CHECK(op);
  return out;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  const char* op = "masked_fill";
  Tensor out = empty(x.shape(), x.dtype(), x.device());
  const int64_t n = out.numel();
  if (n == 0) return out;
  const Tensor* const ts[2] = {&x, &mask};
  const bool bc[2] = {false, true};
  const Indexer<2> ix = make_indexer<2>(x.shape(), ts, bc, op);
  const int dev = x.device().index;
  cudaStream_t stream = stream_for(dev, op);
  dispatch_all(mask.dtype(), op, [&](auto mtag) {
    using M = decltype(mtag);
    dispatch_all(x.dtype(), op, [&](auto tag) {
      using T = decltype(tag);
      masked_fill_kernel<M, T><<<grid_for(n, dev), kThreads, 0, stream>>>(
          base_ptr<T>(x), base_ptr<M>(mask), n, ix, static_cast<T>(value), out.data<T>());
    });
  });
  KNOT_CUDA_LAUNCH_CHECK(op);
  return out;
}

}  // namespace knot::kernels::cuda
