// CUDA reductions (see kernels/reduce.h), deterministic: every sum is a fixed tree (warp
// butterflies, then ordered partials), never atomics, so one launch gives the same bits every run.
//   sum: reduced dims trailing  -> one warp per row (lanes stride the row, then a butterfly);
//        reduced dims leading   -> one thread per output column walking the rows in order
//        (coalesced across the warp); short-and-wide or long-and-narrow shapes split the reduced
//        length into chunks whose partials a second pass sums in chunk order. The chunk count
//        depends only on the shape, never on the device, so results match across GPUs.
//        Other dim sets are permuted to trailing and made contiguous first, as on the CPU.
//   var: one block per row, two passes (mean, then squared deviations), f64 accumulation.
//   max_min: one thread per output element walks its inner-strided row (first index wins ties,
//        the first NaN wins); max_min_bwd scatters into a zeroed gradient (indices are distinct).
// f32 sums accumulate in f64 and integer sums in i64, as on the CPU.
#include <algorithm>
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/reduce.h"

namespace knot::kernels::cuda {
namespace {

using namespace knot::cuda_detail;

__device__ __forceinline__ int64_t warp_index() { return (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5; }
__device__ __forceinline__ int64_t warp_count() { return (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5; }

// out[v] = Σ x[row, c·L .. min(r, (c+1)·L)) for virtual row v = row·chunks + c, L = ⌈r / chunks⌉.
template <typename T, typename A, typename O>
__global__ void row_sum_kernel(const T* __restrict__ x, O* __restrict__ out, int64_t rows, int64_t r, int64_t chunks) {
  const int lane = threadIdx.x & 31;
  const int64_t len = (r + chunks - 1) / chunks;
  for (int64_t v = warp_index(); v < rows * chunks; v += warp_count()) {
    const int64_t row = v / chunks, c = v % chunks;
    const int64_t j0 = c * len, j1 = j0 + len < r ? j0 + len : r;
    const T* p = x + row * r;
    A acc = 0;
    for (int64_t j = j0 + lane; j < j1; j += 32) acc += static_cast<A>(p[j]);
    acc = warp_sum(acc);
    if (lane == 0) out[v] = static_cast<O>(acc);
  }
}

// x: (r, m) -> out[c·m + j] = Σ_{i in chunk c} x[i, j], chunks of L = ⌈r / chunks⌉ rows.
template <typename T, typename A, typename O>
__global__ void col_sum_kernel(const T* __restrict__ x, O* __restrict__ out, int64_t r, int64_t m, int64_t chunks) {
  const int64_t len = (r + chunks - 1) / chunks;
  const int64_t total = m * chunks;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = t / m, j = t % m;
    const int64_t i0 = c * len, i1 = i0 + len < r ? i0 + len : r;
    A acc = 0;
    for (int64_t i = i0; i < i1; ++i) acc += static_cast<A>(x[i * m + j]);
    out[t] = static_cast<O>(acc);
  }
}

// One block per row: var = Σ (x − mean)² / denom; NaN for an empty row.
template <typename T>
__global__ void row_var_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t rows, int64_t r, double denom) {
  __shared__ double scratch[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* p = x + row * r;
    double s = 0;
    for (int64_t j = threadIdx.x; j < r; j += blockDim.x) s += static_cast<double>(p[j]);
    s = block_sum(s, scratch);
    const double mu = r > 0 ? s / static_cast<double>(r) : 0.0;
    double ss = 0;
    for (int64_t j = threadIdx.x; j < r; j += blockDim.x) {
      const double d = static_cast<double>(p[j]) - mu;
      ss += d * d;
    }
    ss = block_sum(ss, scratch);
    if (threadIdx.x == 0) out[row] = static_cast<T>(r == 0 ? NAN : ss / denom);
  }
}

template <typename T>
__device__ __forceinline__ bool is_nan(T v) { return v != v; }

template <typename T>
__global__ void max_min_kernel(const T* __restrict__ x, T* __restrict__ values, int64_t* __restrict__ indices,
                               int64_t outer_rows, int64_t n, int64_t inner, bool take_max) {
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; r < outer_rows;
       r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const T* row = x + (r / inner) * n * inner + r % inner;
    T best = row[0];
    int64_t arg = 0;
    for (int64_t j = 1; j < n && !is_nan(best); ++j) {
      const T v = row[j * inner];
      if ((take_max ? v > best : v < best) || is_nan(v)) {
        best = v;
        arg = j;
      }
    }
    values[r] = best;
    indices[r] = arg;
  }
}

template <typename T>
__global__ void max_min_bwd_kernel(const T* __restrict__ g, const int64_t* __restrict__ idx, T* __restrict__ gx,
                                   int64_t outer_rows, int64_t n, int64_t inner) {
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; r < outer_rows;
       r += static_cast<int64_t>(gridDim.x) * blockDim.x)
    gx[(r / inner) * n * inner + r % inner + idx[r] * inner] = g[r];
}

// Chunks for a row reduction: split long rows only when there are too few rows to fill the GPU.
int64_t row_chunks(int64_t rows, int64_t r) {
  if (rows >= 4096) return 1;
  return std::clamp<int64_t>(r / 8192, 1, 1024);
}
// Chunks for a column reduction: aim at ~128k threads, at least 32 rows per chunk.
int64_t col_chunks(int64_t m, int64_t r) {
  const int64_t want = (131072 + m - 1) / std::max<int64_t>(m, 1);
  return std::clamp<int64_t>(std::min(want, r / 32), 1, 1024);
}

}  // namespace

Tensor sum(const Tensor& x_in, const std::vector<int>& dims) {
  const Shape out_shape = reduced_shape(x_in.shape(), dims);
  const int nd = static_cast<int>(x_in.dim());
  const int k = static_cast<int>(dims.size());
  bool leading = true, trailing = true;
  for (int i = 0; i < k; ++i) {
    leading &= dims[i] == i;
    trailing &= dims[i] == nd - k + i;
  }
  int64_t r = 1;
  for (int d : dims) r *= x_in.shape()[d];
  if (r == 0 || shape_numel(out_shape) == 0) return zeros_on(out_shape, x_in.dtype(), x_in.device(), "sum");
  Tensor out = empty(out_shape, x_in.dtype(), x_in.device());
  Tensor x;
  if (leading || trailing) {
    x = dense(x_in.detach());
  } else {
    x = reduced_dims_last(x_in, dims);
    trailing = true;
    leading = false;
  }
  if (trailing && leading) leading = false;  // all dims reduced: one row
  const int64_t m = out.numel();
  const int dev = x.device().index;
  cudaStream_t stream = stream_for(dev, "sum");
  dispatch_all(x.dtype(), "sum", [&](auto tag) {
    using T = decltype(tag);
    using A = Acc<T>;
    const T* px = x.data<T>();
    T* po = out.data<T>();
    if (trailing) {
      const int64_t chunks = row_chunks(m, r);
      const unsigned grid = grid_for(m * chunks * 32, dev);
      if (chunks == 1) {
        row_sum_kernel<T, A, T><<<grid, kThreads, 0, stream>>>(px, po, m, r, 1);
      } else {
        Tensor partial = empty({m * chunks}, std::is_floating_point_v<T> ? DType::f64 : DType::i64, x.device());
        A* pp = static_cast<A*>(partial.raw_data());
        row_sum_kernel<T, A, A><<<grid, kThreads, 0, stream>>>(px, pp, m, r, chunks);
        row_sum_kernel<A, A, T><<<grid_for(m * 32, dev), kThreads, 0, stream>>>(pp, po, m, chunks, 1);
      }
    } else {
      const int64_t chunks = col_chunks(m, r);
      if (chunks == 1) {
        col_sum_kernel<T, A, T><<<grid_for(m, dev), kThreads, 0, stream>>>(px, po, r, m, 1);
      } else {
        Tensor partial = empty({m * chunks}, std::is_floating_point_v<T> ? DType::f64 : DType::i64, x.device());
        A* pp = static_cast<A*>(partial.raw_data());
        col_sum_kernel<T, A, A><<<grid_for(m * chunks, dev), kThreads, 0, stream>>>(px, pp, r, m, chunks);
        col_sum_kernel<A, A, T><<<grid_for(m, dev), kThreads, 0, stream>>>(pp, po, chunks, m, 1);
      }
    }
    KNOT_CUDA_LAUNCH_CHECK("sum");
  });
  return out;
}

Tensor var(const Tensor& x_in, const std::vector<int>& dims, int64_t correction) {
  const Shape out_shape = reduced_shape(x_in.shape(), dims);
  Tensor out = empty(out_shape, x_in.dtype(), x_in.device());
  const int64_t m = out.numel();
  if (m == 0) return out;
  int64_t r = 1;
  for (int d : dims) r *= x_in.shape()[d];
  const Tensor x = reduced_dims_last(x_in, dims);
  const int dev = x.device().index;
  cudaStream_t stream = stream_for(dev, "var");
  const double denom = static_cast<double>(r - correction);
  dispatch_float(x.dtype(), "var", [&](auto tag) {
    using T = decltype(tag);
    const unsigned grid = static_cast<unsigned>(std::min<int64_t>(m, 65535));
    row_var_kernel<T><<<grid, kThreads, 0, stream>>>(x.data<T>(), out.data<T>(), m, r, denom);
  });
  KNOT_CUDA_LAUNCH_CHECK("var");
  return out;
}

ValuesIndices max_min(const Tensor& x_in, int dim, bool take_max) {
  const char* op = take_max ? "max" : "min";
  const Tensor x = dense(x_in.detach());
  const DimSplit sp = split_at_dim(x.shape(), dim);
  KNOT_CHECK(sp.n > 0, "{}: cannot reduce over dim {} of size 0 in {}", op, dim, shape_str(x.shape()));
  const Shape out_shape = reduced_shape(x.shape(), {dim});
  ValuesIndices out{empty(out_shape, x.dtype(), x.device()), empty(out_shape, DType::i64, x.device())};
  const int64_t rows = sp.rows();
  if (rows == 0) return out;
  const int dev = x.device().index;
  cudaStream_t stream = stream_for(dev, op);
  dispatch_all(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    max_min_kernel<T><<<grid_for(rows, dev), kThreads, 0, stream>>>(x.data<T>(), out.values.data<T>(),
                                                                    out.indices.data<int64_t>(), rows, sp.n, sp.inner,
                                                                    take_max);
  });
  KNOT_CUDA_LAUNCH_CHECK(op);
  return out;
}

Tensor max_min_bwd(const Tensor& g_in, const Tensor& idx_in, const Shape& x_shape, int dim) {
  const Tensor g = dense(g_in.detach());
  const Tensor idx = dense(idx_in);
  KNOT_CHECK(idx.dtype() == DType::i64, "max: indices must be i64, got {}", dtype_name(idx.dtype()));
  Tensor gx = zeros_on(x_shape, g.dtype(), g.device(), "max");
  const DimSplit sp = split_at_dim(x_shape, dim);
  const int64_t rows = sp.rows();
  if (rows == 0 || sp.n == 0) return gx;
  const int dev = g.device().index;
  cudaStream_t stream = stream_for(dev, "max");
  dispatch_float(g.dtype(), "max", [&](auto tag) {
    using T = decltype(tag);
    max_min_bwd_kernel<T><<<grid_for(rows, dev), kThreads, 0, stream>>>(g.data<T>(), idx.data<int64_t>(), gx.data<T>(),
                                                                        rows, sp.n, sp.inner);
  });
  KNOT_CUDA_LAUNCH_CHECK("max");
  return gx;
}

}  // namespace knot::kernels::cuda
