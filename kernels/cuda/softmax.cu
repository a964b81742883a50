// CUDA softmax family (see kernels/softmax.h), on the (outer, n, inner) split of the shape.
//   inner == 1 (softmax over the last dim, the common case): one warp per row; each lane keeps an
//     online (max, Σexp) over a strided slice of the row (kernels/nn_math.h), and the lanes merge in
//     a fixed butterfly, so every lane holds the same logsumexp and the result is deterministic.
//   inner > 1: one thread per (outer, inner) row walking it with stride `inner`; neighbouring
//     threads read neighbouring addresses, so the loads are coalesced without a transpose.
// Accumulation is in f64 for f32 data, as on the CPU.
#include "kernels/cuda/common.cuh"
#include "kernels/nn_math.h"
#include "kernels/softmax.h"

namespace knot::kernels::cuda {
namespace {

using namespace knot::cuda_detail;
using math::OnlineLse;

// The logsumexp of row r (all lanes of a warp in warp mode; one thread otherwise).
template <typename T>
__device__ __forceinline__ double row_lse(const T* row, int64_t n, int64_t stride, bool warp_mode, int lane) {
  OnlineLse<double> st;
  if (warp_mode) {
    for (int64_t j = lane; j < n; j += 32) math::online_lse_add(st, static_cast<double>(row[j]));
    st = warp_merge(st);
  } else {
    for (int64_t j = 0; j < n; ++j) math::online_lse_add(st, static_cast<double>(row[j * stride]));
  }
  return math::online_lse_result(st);
}

// Work items: rows in warp mode (a warp each), rows in thread mode (a thread each).
struct RowLoop {
  int64_t first, step;
  int lane;
  bool warp_mode;
  __device__ RowLoop(bool warp) : warp_mode(warp) {
    const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const int64_t threads = static_cast<int64_t>(gridDim.x) * blockDim.x;
    lane = warp ? static_cast<int>(threadIdx.x & 31) : 0;
    first = warp ? tid >> 5 : tid;
    step = warp ? threads >> 5 : threads;
  }
};

template <typename T>
__global__ void softmax_fwd_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows, int64_t n, int64_t inner,
                                   bool log_space) {
  const RowLoop loop(inner == 1);
  const int64_t s = inner;
  const int64_t j0 = loop.warp_mode ? loop.lane : 0, dj = loop.warp_mode ? 32 : 1;
  for (int64_t r = loop.first; r < rows; r += loop.step) {
    const int64_t base = (r / inner) * n * inner + r % inner;
    const double lse = row_lse(x + base, n, s, loop.warp_mode, loop.lane);
    for (int64_t j = j0; j < n; j += dj) {
      const double v = static_cast<double>(x[base + j * s]) - lse;
      y[base + j * s] = static_cast<T>(log_space ? v : ::exp(v));
    }
  }
}

template <typename T>
__global__ void softmax_bwd_kernel(const T* __restrict__ y, const T* __restrict__ g, T* __restrict__ gx, int64_t rows,
                                   int64_t n, int64_t inner, bool log_space) {
  const RowLoop loop(inner == 1);
  const int64_t s = inner;
  const int64_t j0 = loop.warp_mode ? loop.lane : 0, dj = loop.warp_mode ? 32 : 1;
  for (int64_t r = loop.first; r < rows; r += loop.step) {
    const int64_t base = (r / inner) * n * inner + r % inner;
    double dot = 0;  // softmax: Σ g·y; log_softmax: Σ g
    for (int64_t j = j0; j < n; j += dj) {
      const double gv = static_cast<double>(g[base + j * s]);
      dot += log_space ? gv : gv * static_cast<double>(y[base + j * s]);
    }
    if (loop.warp_mode) dot = warp_sum(dot);
    for (int64_t j = j0; j < n; j += dj) {
      const int64_t k = base + j * s;
      gx[k] = log_space ? static_cast<T>(g[k] - ::exp(static_cast<double>(y[k])) * dot)
                        : static_cast<T>(y[k] * (g[k] - dot));
    }
  }
}

template <typename T>
__global__ void logsumexp_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t rows, int64_t n, int64_t inner) {
  const RowLoop loop(inner == 1);
  for (int64_t r = loop.first; r < rows; r += loop.step) {
    const int64_t base = (r / inner) * n * inner + r % inner;
    const double lse = row_lse(x + base, n, inner, loop.warp_mode, loop.lane);
    if (loop.lane == 0) out[r] = static_cast<T>(lse);
  }
}

unsigned grid_rows(int64_t rows, int64_t inner, int dev) { return grid_for(inner == 1 ? rows * 32 : rows, dev); }

}  // namespace

Tensor softmax_fwd(const Tensor& x_in, int dim, bool log_space) {
  const char* op = log_space ? "log_softmax" : "softmax";
  const Tensor x = dense(x_in.detach());
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  const DimSplit sp = split_at_dim(x.shape(), dim);
  if (x.numel() == 0) return y;
  const int dev = x.device().index;
  cudaStream_t stream = stream_for(dev, op);
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    softmax_fwd_kernel<T><<<grid_rows(sp.rows(), sp.inner, dev), kThreads, 0, stream>>>(x.data<T>(), y.data<T>(),
                                                                                        sp.rows(), sp.n, sp.inner,
                                                                                        log_space);
  });
  KNOT_CUDA_LAUNCH_CHECK(op);
  return y;
}

Tensor softmax_bwd(const Tensor& y_in, const Tensor& g_in, int dim, bool log_space) {
  const char* op = log_space ? "log_softmax" : "softmax";
  const Tensor y = dense(y_in.detach());
  const Tensor g = dense(g_in.detach());
  KNOT_CHECK(y.shape() == g.shape() && y.dtype() == g.dtype(), "{}: gradient {} does not match the output {}", op,
             g.desc(), y.desc());
  Tensor gx = empty(y.shape(), y.dtype(), y.device());
  const DimSplit sp = split_at_dim(y.shape(), dim);
  if (y.numel() == 0) return gx;
  const int dev = y.device().index;
  cudaStream_t stream = stream_for(dev, op);
  dispatch_float(y.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    softmax_bwd_kernel<T><<<grid_rows(sp.rows(), sp.inner, dev), kThreads, 0, stream>>>(
        y.data<T>(), g.data<T>(), gx.data<T>(), sp.rows(), sp.n, sp.inner, log_space);
  });
  KNOT_CUDA_LAUNCH_CHECK(op);
  return gx;
}

Tensor logsumexp(const Tensor& x_in, int dim) {
  const Tensor x = dense(x_in.detach());
  const DimSplit sp = split_at_dim(x.shape(), dim);
  Tensor out = empty(reduced_shape(x.shape(), {dim}), x.dtype(), x.device());
  if (out.numel() == 0) return out;
  const int dev = x.device().index;
  cudaStream_t stream = stream_for(dev, "logsumexp");
  dispatch_float(x.dtype(), "logsumexp", [&](auto tag) {
    using T = decltype(tag);
    logsumexp_kernel<T><<<grid_rows(sp.rows(), sp.inner, dev), kThreads, 0, stream>>>(x.data<T>(), out.data<T>(),
                                                                                      sp.rows(), sp.n, sp.inner);
  });
  KNOT_CUDA_LAUNCH_CHECK("logsumexp");
  return out;
}

}  // namespace knot::kernels::cuda
