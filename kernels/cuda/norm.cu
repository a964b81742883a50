// CUDA layer norm (see kernels/norm.h). f32 accumulates in f64, as on the CPU.
//   forward / dx: one warp per row (grid-stride over rows); two passes over the row for mean and
//     variance (no E[x²] − E[x]² cancellation), lane sums merged by the fixed butterfly of
//     warp_sum, so every run gives the same bits.
//   dweight / dbias: a deterministic two-stage column reduction, no atomics. Stage 1: thread
//     (chunk, j) sums column j over the fixed row chunk [chunk·kRowChunk, …) in row order into a
//     f64 partial; stage 2: thread j adds the partials of its column in chunk order.
#include "kernels/cuda/common.cuh"
#include "kernels/nn_math.h"
#include "kernels/norm.h"

namespace knot::kernels::cuda {
namespace {

using namespace knot::cuda_detail;

constexpr int64_t kRowChunk = 128;

struct WarpLoop {
  int64_t first, step;
  int lane;
  __device__ WarpLoop() {
    const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    first = tid >> 5;
    step = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
    lane = static_cast<int>(threadIdx.x & 31);
  }
};

template <typename T>
__global__ void ln_fwd_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b, int64_t m,
                              int64_t n, double eps, T* __restrict__ y, T* __restrict__ mean, T* __restrict__ rstd) {
  const WarpLoop L;
  for (int64_t r = L.first; r < m; r += L.step) {
    const T* xr = x + r * n;
    double s = 0;
    for (int64_t j = L.lane; j < n; j += 32) s += static_cast<double>(xr[j]);
    const double mu = warp_sum(s) / static_cast<double>(n);
    double ss = 0;
    for (int64_t j = L.lane; j < n; j += 32) {
      const double d = static_cast<double>(xr[j]) - mu;
      ss += d * d;
    }
    const double rs = 1.0 / ::sqrt(warp_sum(ss) / static_cast<double>(n) + eps);
    if (L.lane == 0) {
      mean[r] = static_cast<T>(mu);
      rstd[r] = static_cast<T>(rs);
    }
    T* yr = y + r * n;
    for (int64_t j = L.lane; j < n; j += 32) {
      double v = (static_cast<double>(xr[j]) - mu) * rs;
      if (w) v *= static_cast<double>(w[j]);
      if (b) v += static_cast<double>(b[j]);
      yr[j] = static_cast<T>(v);
    }
  }
}

template <typename T>
__global__ void ln_dx_kernel(const T* __restrict__ g, const T* __restrict__ x, const T* __restrict__ w,
                             const T* __restrict__ mean, const T* __restrict__ rstd, int64_t m, int64_t n,
                             T* __restrict__ dx) {
  const WarpLoop L;
  for (int64_t r = L.first; r < m; r += L.step) {
    const T *xr = x + r * n, *gr = g + r * n;
    // The CPU reads the saved (rounded) mean and rstd too.
    const double mu = static_cast<double>(mean[r]), rs = static_cast<double>(rstd[r]);
    double sgh = 0, sghx = 0;
    for (int64_t j = L.lane; j < n; j += 32) {
      const double gh = w ? static_cast<double>(gr[j]) * static_cast<double>(w[j]) : static_cast<double>(gr[j]);
      sgh += gh;
      sghx += gh * (static_cast<double>(xr[j]) - mu) * rs;
    }
    const double inv_n = 1.0 / static_cast<double>(n);
    const double mgh = warp_sum(sgh) * inv_n, mghx = warp_sum(sghx) * inv_n;
    T* dxr = dx + r * n;
    for (int64_t j = L.lane; j < n; j += 32) {
      const double gh = w ? static_cast<double>(gr[j]) * static_cast<double>(w[j]) : static_cast<double>(gr[j]);
      dxr[j] = static_cast<T>(math::layer_norm_dx(gh, (static_cast<double>(xr[j]) - mu) * rs, rs, mgh, mghx));
    }
  }
}

// Stage 1: partial_w/b[chunk, j] over rows [chunk·kRowChunk, min(m, …+kRowChunk)).
template <typename T>
__global__ void ln_dwdb_partial_kernel(const T* __restrict__ g, const T* __restrict__ x, const T* __restrict__ mean,
                                       const T* __restrict__ rstd, int64_t m, int64_t n, int64_t chunks,
                                       double* __restrict__ pw, double* __restrict__ pb) {
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < chunks * n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = e / n, j = e % n;
    const int64_t r0 = c * kRowChunk, r1 = r0 + kRowChunk < m ? r0 + kRowChunk : m;
    double aw = 0, ab = 0;
    for (int64_t r = r0; r < r1; ++r) {
      const double gv = static_cast<double>(g[r * n + j]);
      aw += gv * ((static_cast<double>(x[r * n + j]) - static_cast<double>(mean[r])) * static_cast<double>(rstd[r]));
      ab += gv;
    }
    pw[e] = aw;
    pb[e] = ab;
  }
}

template <typename T>
__global__ void ln_dwdb_final_kernel(const double* __restrict__ pw, const double* __restrict__ pb, int64_t n,
                                     int64_t chunks, T* __restrict__ dw, T* __restrict__ db) {
  for (int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < n;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double aw = 0, ab = 0;
    for (int64_t c = 0; c < chunks; ++c) {
      aw += pw[c * n + j];
      ab += pb[c * n + j];
    }
    if (dw) dw[j] = static_cast<T>(aw);
    if (db) db[j] = static_cast<T>(ab);
  }
}

Tensor flat(const Tensor& t) { return t.defined() ? dense(t) : Tensor(); }

unsigned warp_grid(int64_t rows, int dev) { return grid_for(rows * 32, dev); }

}  // namespace

LayerNormFwd layer_norm_fwd(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, int64_t n, double eps) {
  const char* op = "layer_norm";
  const Tensor x = flat(x_in), w = flat(w_in), b = flat(b_in);
  const int64_t m = n > 0 ? x.numel() / n : 0;
  LayerNormFwd out{empty(x.shape(), x.dtype(), x.device()), empty({m}, x.dtype(), x.device()),
                   empty({m}, x.dtype(), x.device())};
  if (m == 0) return out;
  const int dev = x.device().index;
  cudaStream_t stream = stream_for(dev, op);
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    ln_fwd_kernel<T><<<warp_grid(m, dev), kThreads, 0, stream>>>(
        x.data<T>(), w.defined() ? w.data<T>() : nullptr, b.defined() ? b.data<T>() : nullptr, m, n, eps,
        out.y.template data<T>(), out.mean.template data<T>(), out.rstd.template data<T>());
  });
  KNOT_CUDA_LAUNCH_CHECK(op);
  return out;
}

LayerNormBwd layer_norm_bwd(const Tensor& g_in, const Tensor& x_in, const Tensor& w_in, const Tensor& mean_in,
                            const Tensor& rstd_in, int64_t n, bool need_dx, bool need_dweight, bool need_dbias) {
  const char* op = "layer_norm backward";
  const Tensor g = flat(g_in), x = flat(x_in), w = flat(w_in), mean = flat(mean_in), rstd = flat(rstd_in);
  const int64_t m = n > 0 ? x.numel() / n : 0;
  const Device dv = x.device();
  LayerNormBwd out;
  if (need_dx) out.dx = empty(x.shape(), x.dtype(), dv);
  if (need_dweight) out.dweight = empty({n}, x.dtype(), dv);
  if (need_dbias) out.dbias = empty({n}, x.dtype(), dv);
  if (m == 0) {  // no rows: dweight / dbias are empty sums
    if (need_dweight) out.dweight = zeros_on({n}, x.dtype(), dv, op);
    if (need_dbias) out.dbias = zeros_on({n}, x.dtype(), dv, op);
    return out;
  }
  const int dev = dv.index;
  cudaStream_t stream = stream_for(dev, op);
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    if (need_dx) {
      ln_dx_kernel<T><<<warp_grid(m, dev), kThreads, 0, stream>>>(g.data<T>(), x.data<T>(),
                                                                  w.defined() ? w.data<T>() : nullptr,
                                                                  mean.data<T>(), rstd.data<T>(), m, n,
                                                                  out.dx.template data<T>());
      KNOT_CUDA_LAUNCH_CHECK(op);
    }
    if (need_dweight || need_dbias) {
      const int64_t chunks = (m + kRowChunk - 1) / kRowChunk;
      Tensor part = empty({2, chunks, n}, DType::f64, dv);
      double* pw = part.data<double>();
      double* pb = pw + chunks * n;
      ln_dwdb_partial_kernel<T><<<grid_for(chunks * n, dev), kThreads, 0, stream>>>(
          g.data<T>(), x.data<T>(), mean.data<T>(), rstd.data<T>(), m, n, chunks, pw, pb);
      KNOT_CUDA_LAUNCH_CHECK(op);
      ln_dwdb_final_kernel<T><<<grid_for(n, dev), kThreads, 0, stream>>>(
          pw, pb, n, chunks, need_dweight ? out.dweight.template data<T>() : nullptr,
          need_dbias ? out.dbias.template data<T>() : nullptr);
      KNOT_CUDA_LAUNCH_CHECK(op);
    }
  });
  return out;
}

}  // namespace knot::kernels::cuda
