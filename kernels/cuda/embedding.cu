// CUDA embedding (see kernels/embedding.h): a row gather forward; a deterministic backward without
// atomics (kernels/cuda/segments.cuh: ids grouped per row on the host, where they are range-checked
// anyway, then one thread per (row, column) sums its tokens in token order, as the CPU does).
#include <vector>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/segments.cuh"
#include "kernels/embedding.h"

namespace knot::kernels::cuda {
namespace {

using namespace knot::cuda_detail;

std::vector<int64_t> read_ids(const Tensor& ids, int64_t num_embeddings) {
  std::vector<int64_t> out = dispatch_index(ids.dtype(), "embedding", [&](auto tag) {
    using I = decltype(tag);
    const auto v = ids.to_vector<I>();
    return std::vector<int64_t>(v.begin(), v.end());
  });
  for (size_t t = 0; t < out.size(); ++t)
    KNOT_CHECK(out[t] >= 0 && out[t] < num_embeddings,
               "embedding: id {} (at position {}) is out of range for a table of V={} rows", out[t], t,
               num_embeddings);
  return out;
}

template <typename T, typename I>
__global__ void gather_rows_kernel(const T* __restrict__ w, const I* __restrict__ ids, int64_t N, int64_t D,
                                   T* __restrict__ out) {
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < N * D;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[e] = w[static_cast<int64_t>(ids[e / D]) * D + e % D];
}

}  // namespace

Tensor embedding_fwd(const Tensor& ids_in, const Tensor& weight) {
  const char* op = "embedding";
  const Tensor w = dense(weight), ids = dense(ids_in);
  const int64_t V = w.size(0), D = w.size(1);
  (void)read_ids(ids, V);
  const int64_t N = ids.numel();
  Shape out_shape = ids.shape();
  out_shape.push_back(D);
  Tensor out = empty(out_shape, w.dtype(), w.device());
  if (N * D == 0) return out;
  const int dev = w.device().index;
  cudaStream_t stream = stream_for(dev, op);
  dispatch_float(w.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    dispatch_index(ids.dtype(), op, [&](auto itag) {
      using I = decltype(itag);
      gather_rows_kernel<T, I><<<grid_for(N * D, dev), kThreads, 0, stream>>>(w.data<T>(), ids.data<I>(), N, D,
                                                                              out.data<T>());
    });
  });
  KNOT_CUDA_LAUNCH_CHECK(op);
  return out;
}

Tensor embedding_bwd(const Tensor& g_in, const Tensor& ids_in, int64_t num_embeddings, int64_t padding_idx) {
  const char* op = "embedding backward";
  const Tensor g = dense(g_in), ids = dense(ids_in);
  const int64_t D = g.shape().back();
  std::vector<int64_t> id = read_ids(ids, num_embeddings);
  const int64_t N = static_cast<int64_t>(id.size());
  KNOT_CHECK(g.numel() == N * D, "embedding: gradient {} does not match {} ids of dim {}", shape_str(g.shape()), N, D);
  for (int64_t& v : id)
    if (v == padding_idx) v = -1;  // padding rows are constants: no gradient
  Tensor gw = zeros_on({num_embeddings, D}, g.dtype(), g.device(), op);
  const Segments seg = make_segments(id, num_embeddings, g.device());
  if (seg.nseg == 0 || D == 0) return gw;
  const int dev = g.device().index;
  cudaStream_t stream = stream_for(dev, op);
  dispatch_float(g.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    segment_sum_kernel<T><<<grid_for(seg.nseg * D, dev), kThreads, 0, stream>>>(
        g.data<T>(), seg.table.data<int64_t>(), seg.nseg, 1, D, N, num_embeddings, gw.data<T>());
  });
  KNOT_CUDA_LAUNCH_CHECK(op);
  return gw;
}

}  // namespace knot::kernels::cuda
