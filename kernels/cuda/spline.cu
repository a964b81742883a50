// CUDA kernels of the KAN layers (see kernels/spline.h for the formulas).
//
// Design: "compact basis block + cuBLAS". For a chunk of R rows a kernel evaluates the feature
// matrix A (R, in·m) on the fly from x — m = nb (+1 for silu(x) when there is a base branch),
// computed by the KNOT_HD Cox–de Boor recursion of kernels/bases/bspline.h (one thread per (row,
// feature): binary search + O(k²) flops, then m stores) — and cuBLAS multiplies it:
//   forward   Y[chunk]  = A·Wcatᵀ                 Wcat (out, in·m) = [base_w | coeff] per feature
//   backward  dWcat    += G[chunk]ᵀ·A              (beta = 1 after the first chunk, chunks in order)
//             dA        = G[chunk]·Wcat,  dx[r,i] = silu'(x)·dA[r,i,0] + Σ_q dN_q(x)·dA[r,i,1+s−k+q]
// The dx kernel recomputes the k+1 non-zero derivatives dN from x instead of storing a dense ∂A/∂x.
// Memory: one A buffer (and one dA buffer in backward) of at most kChunkBytes (64 MiB) each,
// whatever N is, plus Wcat / dWcat (out·in·m). Nothing of size N·in·m is kept between calls, and
// nothing is reduced with atomics: cuBLAS GEMMs (default algorithm, no split-K atomics for these
// calls) and a fixed chunk order give the same bits on every run.
// Both SplinePath values run this path on the GPU (the CPU's local path exists for cache reasons;
// the result is the same up to rounding). The flop cost is (G+k+1) Linear layers at GEMM rate.
//
// Generic bases (kan_basis_*): BasisEval (kernels/spline.h) is a host std::function with no
// device-side identity, so the per-element values Φ(x) (and dΦ/dx) are evaluated on the host per
// chunk, uploaded, and multiplied by cuBLAS on the device; the dx reduction runs on the device.
#include <algorithm>
#include <vector>

#include "kernels/bases/bspline.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/runtime.h"
#include "kernels/math.h"
#include "kernels/spline.h"

namespace knot::kernels::cuda {
namespace {

using namespace knot::cuda_detail;

constexpr int64_t kChunkBytes = int64_t{64} << 20;

int64_t chunk_rows(int64_t n, int64_t cols, size_t elem) {
  const int64_t r = kChunkBytes / static_cast<int64_t>(elem) / std::max<int64_t>(cols, 1);
  return std::clamp<int64_t>(r, 1, std::max<int64_t>(n, 1));
}

// Row-major C (M×N) = op(A)·op(B) (+ beta·C). A is (M×K) row-major with leading dim lda, or when
// ta its transpose is stored, i.e. (K×M) with leading dim lda; likewise B. See linalg.cu for the
// column-major translation: Cᵀ = op(B)ᵀ·op(A)ᵀ.
template <typename T>
void gemm_rm(cublasHandle_t h, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
             int64_t ldb, T beta, T* C, int64_t ldc, const char* op) {
  KNOT_CHECK(M <= INT32_MAX && N <= INT32_MAX && K <= INT32_MAX && lda <= INT32_MAX && ldb <= INT32_MAX &&
                 ldc <= INT32_MAX,
             "{}: GEMM dims beyond cuBLAS's 32-bit limit", op);
  const bool f32 = std::is_same_v<T, float>;
  const cudaDataType_t ct = f32 ? CUDA_R_32F : CUDA_R_64F;
  const cublasComputeType_t comp =
      f32 ? (cuda_allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F) : CUBLAS_COMPUTE_64F;
  const T one = T(1);
  CUBLAS_CHECK(cublasGemmEx(h, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(N),
                            static_cast<int>(M), static_cast<int>(K), &one, B, ct, static_cast<int>(ldb), A, ct,
                            static_cast<int>(lda), &beta, C, ct, static_cast<int>(ldc), comp, CUBLAS_GEMM_DEFAULT),
               op);
}

template <typename T> __device__ __forceinline__ T silu(T x) { return math::unary_fwd<UnaryOp::silu>(x, T(0), T(0)); }
template <typename T> __device__ __forceinline__ T silu_grad(T x) {
  return math::unary_deriv<UnaryOp::silu>(x, T(0), T(0), T(0));
}

#define KNOT_GRID_STRIDE(i, n)                                                              \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

// inv (in, k, nk): reciprocal knot differences, one thread per feature.
template <typename T>
__global__ void inv_denoms_kernel(const T* __restrict__ grid, int64_t in, int nk, int k, T* __restrict__ inv) {
  KNOT_GRID_STRIDE(i, in) basis::bspline_inv_denoms(grid + i * nk, nk, k, inv + i * k * nk);
}

// out (E, nb): B-spline values or derivatives of x[e], e = r·in + i.
template <typename T>
__global__ void basis_kernel(const T* __restrict__ x, const T* __restrict__ grid, const T* __restrict__ inv, int64_t E,
                             int64_t in, int nk, int k, bool derivative, T* __restrict__ out) {
  const int nb = nk - k - 1;
  KNOT_GRID_STRIDE(e, E) {
    const int64_t i = e % in;
    T* dst = out + e * nb;
    for (int j = 0; j < nb; ++j) dst[j] = T(0);
    const T* t = grid + i * nk;
    const T xv = x[e];
    const int s = basis::bspline_span(xv, t, nk);
    if (s < 0) continue;
    T v[basis::kMaxSplineOrder + 1], dv[basis::kMaxSplineOrder + 1];
    basis::bspline_local_inv<-1>(xv, t, inv + i * k * nk, nk, k, s, v, dv);
    for (int q = 0; q <= k; ++q) {
      const int j = s - k + q;
      if (j >= 0 && j < nb) dst[j] = derivative ? dv[q] : v[q];
    }
  }
}

// A (rows, in, m) = [silu(x) | B_0(x) … B_{nb−1}(x)] per feature, for x rows [0, rows).
template <int KS, typename T>
__global__ void fill_kernel(const T* __restrict__ x, const T* __restrict__ grid, const T* __restrict__ inv,
                            int64_t rows, int64_t in, int nk, int k_rt, bool base, T* __restrict__ A) {
  const int k = KS >= 0 ? KS : k_rt;
  const int nb = nk - k - 1;
  const int m = nb + (base ? 1 : 0);
  KNOT_GRID_STRIDE(e, rows * in) {
    const int64_t i = e % in;
    const T xv = x[e];
    T* a = A + e * m;
    if (base) *a++ = silu(xv);
    for (int j = 0; j < nb; ++j) a[j] = T(0);
    const T* t = grid + i * nk;
    const int s = basis::bspline_span(xv, t, nk);
    if (s < 0) continue;
    T N[basis::kMaxSplineOrder + 1];
    basis::bspline_local_inv<KS>(xv, t, inv + i * k * nk, nk, k, s, N, static_cast<T*>(nullptr));
#pragma unroll
    for (int q = 0; q <= (KS >= 0 ? KS : basis::kMaxSplineOrder); ++q) {
      if (q > k) break;
      const int j = s - k + q;
      if (j >= 0 && j < nb) a[j] = N[q];
    }
  }
}

// dx[r, i] from dA (rows, in, m): the base term plus the k+1 recomputed spline derivatives.
template <int KS, typename T>
__global__ void spline_dx_kernel(const T* __restrict__ x, const T* __restrict__ grid, const T* __restrict__ inv,
                                 const T* __restrict__ dA, int64_t rows, int64_t in, int nk, int k_rt, bool base,
                                 T* __restrict__ dx) {
  const int k = KS >= 0 ? KS : k_rt;
  const int nb = nk - k - 1;
  const int m = nb + (base ? 1 : 0);
  KNOT_GRID_STRIDE(e, rows * in) {
    const int64_t i = e % in;
    const T xv = x[e];
    const T* da = dA + e * m;
    T acc = T(0);
    if (base) acc = da[0] * silu_grad(xv), ++da;
    const T* t = grid + i * nk;
    const int s = basis::bspline_span(xv, t, nk);
    if (s >= 0) {
      T N[basis::kMaxSplineOrder + 1], dN[basis::kMaxSplineOrder + 1];
      basis::bspline_local_inv<KS>(xv, t, inv + i * k * nk, nk, k, s, N, dN);
      for (int q = 0; q <= k; ++q) {
        const int j = s - k + q;
        if (j >= 0 && j < nb) acc += dN[q] * da[j];
      }
    }
    dx[e] = acc;
  }
}

// W (out, in, m) = [base_w | coeff] per (o, i).
template <typename T>
__global__ void concat_kernel(const T* __restrict__ base_w, const T* __restrict__ coeff, int64_t OI, int nb, bool base,
                              T* __restrict__ W) {
  const int m = nb + (base ? 1 : 0);
  KNOT_GRID_STRIDE(e, OI * m) {
    const int64_t oi = e / m;
    const int c = static_cast<int>(e % m);
    W[e] = base ? (c == 0 ? base_w[oi] : coeff[oi * nb + c - 1]) : coeff[oi * nb + c];
  }
}

// Splits dW (out, in, m) into dbase (out, in) and dcoeff (out, in, nb); either may be null.
template <typename T>
__global__ void split_kernel(const T* __restrict__ dW, int64_t OI, int nb, bool base, T* __restrict__ dbase,
                             T* __restrict__ dcoeff) {
  const int m = nb + (base ? 1 : 0);
  KNOT_GRID_STRIDE(e, OI * m) {
    const int64_t oi = e / m;
    const int c = static_cast<int>(e % m);
    if (base && c == 0) {
      if (dbase) dbase[oi] = dW[e];
    } else if (dcoeff) {
      dcoeff[oi * nb + c - (base ? 1 : 0)] = dW[e];
    }
  }
}

// dx[e] = Σ_c dA[e, c]·D[e, c] (generic bases).
template <typename T>
__global__ void rowdot_kernel(const T* __restrict__ dA, const T* __restrict__ D, int64_t E, int64_t m,
                              T* __restrict__ dx) {
  KNOT_GRID_STRIDE(e, E) {
    T acc = T(0);
    for (int64_t c = 0; c < m; ++c) acc += dA[e * m + c] * D[e * m + c];
    dx[e] = acc;
  }
}

template <typename F>
void with_order(int k, F&& f) {
  if (k == 3) return f(std::integral_constant<int, 3>{});
  return f(std::integral_constant<int, -1>{});
}

template <typename T>
Tensor inv_denoms(const Tensor& grid, int64_t in, int64_t nk, int k, cudaStream_t stream, int dev, const char* op) {
  Tensor inv = empty({std::max<int64_t>(1, in * k * nk)}, grid.dtype(), grid.device());
  if (k > 0 && in > 0)
    inv_denoms_kernel<T><<<grid_for(in, dev), kThreads, 0, stream>>>(grid.data<T>(), in, static_cast<int>(nk), k,
                                                                     inv.data<T>());
  KNOT_CUDA_LAUNCH_CHECK(op);
  return inv;
}

template <typename T>
Tensor concat_weights(const SplineDims& d, const Tensor& base_w, const Tensor& coeff, cudaStream_t stream, int dev,
                      const char* op) {
  Tensor W = empty({d.out, d.in * d.m()}, coeff.dtype(), coeff.device());
  const int64_t n = d.out * d.in * d.m();
  if (n > 0)
    concat_kernel<T><<<grid_for(n, dev), kThreads, 0, stream>>>(d.base ? base_w.data<T>() : nullptr, coeff.data<T>(),
                                                                d.out * d.in, static_cast<int>(d.nb), d.base,
                                                                W.data<T>());
  KNOT_CUDA_LAUNCH_CHECK(op);
  return W;
}

}  // namespace

Tensor bspline_basis(const Tensor& x_in, const Tensor& grid_in, int k, bool derivative) {
  const char* op = "bspline_basis";
  const Tensor x = dense(x_in), grid = dense(grid_in);
  const int64_t N = x.size(0), in = x.size(1), nk = grid.size(1), nb = nk - k - 1;
  KNOT_CHECK(k >= 0 && k <= basis::kMaxSplineOrder, "{}: spline order {} outside 0 … {}", op, k,
             basis::kMaxSplineOrder);
  Tensor out = empty({N, in, nb}, x.dtype(), x.device());
  if (out.numel() == 0) return out;
  const int dev = x.device().index;
  cudaStream_t stream = stream_for(dev, op);
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const Tensor inv = inv_denoms<T>(grid, in, nk, k, stream, dev, op);
    basis_kernel<T><<<grid_for(N * in, dev), kThreads, 0, stream>>>(x.data<T>(), grid.data<T>(), inv.data<T>(),
                                                                    N * in, in, static_cast<int>(nk), k, derivative,
                                                                    out.data<T>());
    KNOT_CUDA_LAUNCH_CHECK(op);
  });
  return out;
}

Tensor kan_bspline_fwd(const Tensor& x, const Tensor& grid, const Tensor& base_w, const Tensor& coeff, int k,
                       SplinePath) {
  const char* op = "kan_bspline";
  const SplineDims d = spline_dims(op, x, grid, base_w, coeff, k);
  Tensor y = empty({d.N, d.out}, x.dtype(), x.device());
  if (y.numel() == 0) return y;
  if (d.in == 0) return zeros_on({d.N, d.out}, x.dtype(), x.device(), op);
  const int dev = x.device().index;
  cudaStream_t stream = stream_for(dev, op);
  cublasHandle_t h = cublas_for(dev, op);
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const Tensor inv = inv_denoms<T>(grid, d.in, d.nk, k, stream, dev, op);
    const Tensor W = concat_weights<T>(d, base_w, coeff, stream, dev, op);
    const int64_t cols = d.in * d.m();
    const int64_t R = chunk_rows(d.N, cols, sizeof(T));
    Tensor A = empty({R, cols}, x.dtype(), x.device());
    for (int64_t r0 = 0; r0 < d.N; r0 += R) {
      const int64_t rows = std::min(R, d.N - r0);
      with_order(k, [&](auto kc) {
        fill_kernel<decltype(kc)::value, T><<<grid_for(rows * d.in, dev), kThreads, 0, stream>>>(
            x.data<T>() + r0 * d.in, grid.data<T>(), inv.data<T>(), rows, d.in, static_cast<int>(d.nk), k, d.base,
            A.data<T>());
      });
      KNOT_CUDA_LAUNCH_CHECK(op);
      gemm_rm<T>(h, false, true, rows, d.out, cols, A.data<T>(), cols, W.data<T>(), cols, T(0),
                 y.data<T>() + r0 * d.out, d.out, op);
    }
  });
  return y;
}

SplineGrads kan_bspline_bwd(const Tensor& x, const Tensor& grid, const Tensor& base_w, const Tensor& coeff,
                            const Tensor& g_in, int k, SplinePath, bool need_dx, bool need_dbase, bool need_dcoeff) {
  const char* op = "kan_bspline backward";
  const SplineDims d = spline_dims(op, x, grid, base_w, coeff, k);
  need_dbase = need_dbase && d.base;
  const Tensor g = dense(g_in);
  SplineGrads out;
  const Device dv = x.device();
  if (need_dx) out.dx = empty({d.N, d.in}, x.dtype(), dv);
  if (need_dbase) out.dbase_w = empty({d.out, d.in}, x.dtype(), dv);
  if (need_dcoeff) out.dcoeff = empty({d.out, d.in, d.nb}, x.dtype(), dv);
  const bool need_dw = need_dbase || need_dcoeff;
  if (!need_dx && !need_dw) return out;
  const int dev = dv.index;
  const int64_t cols = d.in * d.m();
  // Degenerate sizes: every gradient is a sum over an empty range.
  if (d.N == 0 || d.out == 0 || cols == 0) {
    if (need_dx) out.dx = zeros_on({d.N, d.in}, x.dtype(), dv, op);
    if (need_dbase) out.dbase_w = zeros_on({d.out, d.in}, x.dtype(), dv, op);
    if (need_dcoeff) out.dcoeff = zeros_on({d.out, d.in, d.nb}, x.dtype(), dv, op);
    return out;
  }
  cudaStream_t stream = stream_for(dev, op);
  cublasHandle_t h = cublas_for(dev, op);
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const Tensor inv = inv_denoms<T>(grid, d.in, d.nk, k, stream, dev, op);
    const Tensor W = concat_weights<T>(d, base_w, coeff, stream, dev, op);
    Tensor dW = need_dw ? empty({d.out, cols}, x.dtype(), dv) : Tensor();
    const int64_t R = chunk_rows(d.N, cols, sizeof(T));
    Tensor A = need_dw ? empty({R, cols}, x.dtype(), dv) : Tensor();
    Tensor dA = need_dx ? empty({R, cols}, x.dtype(), dv) : Tensor();
    for (int64_t r0 = 0; r0 < d.N; r0 += R) {
      const int64_t rows = std::min(R, d.N - r0);
      const T* gr = g.data<T>() + r0 * d.out;
      if (need_dw) {
        with_order(k, [&](auto kc) {
          fill_kernel<decltype(kc)::value, T><<<grid_for(rows * d.in, dev), kThreads, 0, stream>>>(
              x.data<T>() + r0 * d.in, grid.data<T>(), inv.data<T>(), rows, d.in, static_cast<int>(d.nk), k, d.base,
              A.data<T>());
        });
        KNOT_CUDA_LAUNCH_CHECK(op);
        // dW (out × cols) (+)= Gᵀ·A
        gemm_rm<T>(h, true, false, d.out, cols, rows, gr, d.out, A.data<T>(), cols, r0 == 0 ? T(0) : T(1),
                   dW.data<T>(), cols, op);
      }
      if (need_dx) {
        // dA (rows × cols) = G·W
        gemm_rm<T>(h, false, false, rows, cols, d.out, gr, d.out, W.data<T>(), cols, T(0), dA.data<T>(), cols, op);
        with_order(k, [&](auto kc) {
          spline_dx_kernel<decltype(kc)::value, T><<<grid_for(rows * d.in, dev), kThreads, 0, stream>>>(
              x.data<T>() + r0 * d.in, grid.data<T>(), inv.data<T>(), dA.data<T>(), rows, d.in,
              static_cast<int>(d.nk), k, d.base, out.dx.template data<T>() + r0 * d.in);
        });
        KNOT_CUDA_LAUNCH_CHECK(op);
      }
    }
    if (need_dw) {
      split_kernel<T><<<grid_for(d.out * cols, dev), kThreads, 0, stream>>>(
          dW.data<T>(), d.out * d.in, static_cast<int>(d.nb), d.base,
          need_dbase ? out.dbase_w.template data<T>() : nullptr, need_dcoeff ? out.dcoeff.template data<T>() : nullptr);
      KNOT_CUDA_LAUNCH_CHECK(op);
    }
  });
  return out;
}

// ---- generic basis (host-evaluated Φ, device GEMM) --------------------------------------------

namespace {

// Evaluates Φ (and dΦ) of x rows [r0, r0+rows) on the host into phi_h / dphi_h and uploads them.
template <typename T>
void host_features(const BasisEval& b, const T* xh, int64_t r0, int64_t rows, int64_t in, std::vector<T>& phi_h,
                   std::vector<T>* dphi_h, const Tensor& phi_d, const Tensor* dphi_d, cudaStream_t stream,
                   const char* op) {
  const size_t n = static_cast<size_t>(rows * in * b.nf);
  phi_h.resize(n);
  if (dphi_h) dphi_h->resize(n);
  if constexpr (std::is_same_v<T, float>) {
    KNOT_CHECK(b.f32, "{}: this basis has no f32 evaluation", op);
    b.f32(xh + r0 * in, rows, in, phi_h.data(), dphi_h ? dphi_h->data() : nullptr);
  } else {
    KNOT_CHECK(b.f64, "{}: this basis has no f64 evaluation", op);
    b.f64(xh + r0 * in, rows, in, phi_h.data(), dphi_h ? dphi_h->data() : nullptr);
  }
  CUDA_CHECK(cudaMemcpyAsync(phi_d.data<T>(), phi_h.data(), n * sizeof(T), cudaMemcpyHostToDevice, stream), op);
  if (dphi_h)
    CUDA_CHECK(cudaMemcpyAsync(dphi_d->data<T>(), dphi_h->data(), n * sizeof(T), cudaMemcpyHostToDevice, stream), op);
  // The host buffers are reused by the next chunk: wait for the copies (pageable memory).
  CUDA_CHECK(cudaStreamSynchronize(stream), op);
}

}  // namespace

Tensor kan_basis_fwd(const Tensor& x_in, const Tensor& w_in, const BasisEval& basis) {
  const char* op = "kan_basis";
  const Tensor w = dense(w_in);
  const Tensor xh = x_in.to(Device::cpu()).contiguous();
  const int64_t N = xh.size(0), in = xh.size(1), out = w.size(0), nf = basis.nf, cols = in * nf;
  const Device dv = x_in.device();
  if (N == 0 || out == 0) return empty({N, out}, x_in.dtype(), dv);
  if (cols == 0) return zeros_on({N, out}, x_in.dtype(), dv, op);
  Tensor y = empty({N, out}, x_in.dtype(), dv);
  const int dev = dv.index;
  cudaStream_t stream = stream_for(dev, op);
  cublasHandle_t h = cublas_for(dev, op);
  dispatch_float(x_in.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const int64_t R = chunk_rows(N, cols, sizeof(T));
    Tensor A = empty({R, cols}, x_in.dtype(), dv);
    std::vector<T> phi;
    for (int64_t r0 = 0; r0 < N; r0 += R) {
      const int64_t rows = std::min(R, N - r0);
      host_features<T>(basis, xh.data<T>(), r0, rows, in, phi, nullptr, A, nullptr, stream, op);
      gemm_rm<T>(h, false, true, rows, out, cols, A.data<T>(), cols, w.data<T>(), cols, T(0), y.data<T>() + r0 * out,
                 out, op);
    }
  });
  return y;
}

std::array<Tensor, 2> kan_basis_bwd(const Tensor& x_in, const Tensor& w_in, const Tensor& g_in,
                                    const BasisEval& basis, bool need_dx, bool need_dw) {
  const char* op = "kan_basis backward";
  const Tensor w = dense(w_in), g = dense(g_in);
  const Tensor xh = x_in.to(Device::cpu()).contiguous();
  const int64_t N = xh.size(0), in = xh.size(1), out = w.size(0), nf = basis.nf, cols = in * nf;
  const Device dv = x_in.device();
  std::array<Tensor, 2> r;
  if (N == 0 || out == 0 || cols == 0) {
    if (need_dx) r[0] = zeros_on({N, in}, x_in.dtype(), dv, op);
    if (need_dw) r[1] = zeros_on({out, in, nf}, x_in.dtype(), dv, op);
    return r;
  }
  if (need_dx) r[0] = empty({N, in}, x_in.dtype(), dv);
  if (need_dw) r[1] = empty({out, in, nf}, x_in.dtype(), dv);
  if (!need_dx && !need_dw) return r;
  const int dev = dv.index;
  cudaStream_t stream = stream_for(dev, op);
  cublasHandle_t h = cublas_for(dev, op);
  dispatch_float(x_in.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const int64_t R = chunk_rows(N, cols, sizeof(T));
    Tensor A = empty({R, cols}, x_in.dtype(), dv);
    Tensor D = need_dx ? empty({R, cols}, x_in.dtype(), dv) : Tensor();
    Tensor dA = need_dx ? empty({R, cols}, x_in.dtype(), dv) : Tensor();
    std::vector<T> phi, dphi;
    for (int64_t r0 = 0; r0 < N; r0 += R) {
      const int64_t rows = std::min(R, N - r0);
      const T* gr = g.data<T>() + r0 * out;
      host_features<T>(basis, xh.data<T>(), r0, rows, in, phi, need_dx ? &dphi : nullptr, A, need_dx ? &D : nullptr,
                       stream, op);
      if (need_dw)
        gemm_rm<T>(h, true, false, out, cols, rows, gr, out, A.data<T>(), cols, r0 == 0 ? T(0) : T(1),
                   r[1].template data<T>(), cols, op);
      if (need_dx) {
        gemm_rm<T>(h, false, false, rows, cols, out, gr, out, w.data<T>(), cols, T(0), dA.data<T>(), cols, op);
        rowdot_kernel<T><<<grid_for(rows * in, dev), kThreads, 0, stream>>>(dA.data<T>(), D.data<T>(), rows * in, nf,
                                                                            r[0].template data<T>() + r0 * in);
        KNOT_CUDA_LAUNCH_CHECK(op);
      }
    }
    // A, D and dA are freed when this returns; later kernels on the stream are ordered after these.
  });
  return r;
}

}  // namespace knot::kernels::cuda
