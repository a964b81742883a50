// CUDA fused scaled-dot-product attention (formulas in kernels/attention.h), flash-style:
//
// forward  one block per (b·h, tile of BQ query rows). Q's tile stays in shared memory; K and V
//          stream through it in tiles of BK keys (only up to the causal limit of the tile's last
//          row). Per row, the tile's scores are folded into a running (max, Σexp) with the KNOT_HD
//          online_lse_add / online_lse_merge of kernels/nn_math.h; the output accumulator is
//          rescaled by exp(m_old − m_new). Dropout multiplies the normalised weights by
//          keep/(1−p) with keep = dropout_keep(seed, draw, offset+((b·H+h)·T+t)·S+s, p), the CPU's
//          decision, while Σexp uses the undropped weights. Saves lse; a fully masked row gets
//          lse = −inf and output 0.
// backward D_t = Σ_j dO_tj·O_tj first; then two kernels that each recompute P = exp(S − lse):
//          dK/dV: one block per (b·h, tile of keys), looping over the query tiles that can see it;
//          dQ:    one block per (b·h, tile of queries), looping over its visible key tiles.
//          Each block owns the rows it writes, so there are no atomics and the summation order is
//          fixed: the same inputs give the same bits on every run.
// Arithmetic is in T (f32 or f64) with CUDA cores (no tensor cores); BQ = BK is the largest of
// 32/16/8 whose tiles fit the device's opt-in shared memory for the head dims at hand.
// q, k, v, dout, out are read through their strides; outputs are contiguous.
#include <algorithm>

#include "kernels/attention.h"
#include "kernels/cuda/common.cuh"
#include "kernels/dropout.h"
#include "kernels/nn_math.h"

namespace knot::kernels::cuda {
namespace {

using namespace knot::cuda_detail;
using math::OnlineLse;

constexpr int kAttnThreads = 128;

struct S4 {
  int64_t b, h, t, d;
};
S4 strides_of(const Tensor& x) { return {x.stride(0), x.stride(1), x.stride(2), x.stride(3)}; }

struct Geo {
  int64_t B, H, T, S, Dk, Dv, causal_offset;
  bool causal;
  bool dropout;
  float p;
  uint64_t seed, draw, offset;
  double scale, inv_keep;
};

__device__ __forceinline__ int imin64(int a, int64_t b) { return b < a ? static_cast<int>(b) : a; }

__device__ __forceinline__ int64_t visible(const Geo& g, int64_t t) {
  if (!g.causal) return g.S;
  const int64_t v = t + g.causal_offset + 1;
  return v < 0 ? 0 : (v > g.S ? g.S : v);
}

// 1 when query t may attend key s of batch b.
__device__ __forceinline__ bool allowed(const Geo& g, const int32_t* pad, int64_t b, int64_t t, int64_t s) {
  return s < visible(g, t) && !(pad && pad[b * g.S + s]);
}

template <typename T>
__device__ __forceinline__ T drop_factor(const Geo& g, int64_t bh, int64_t t, int64_t s) {
  if (!g.dropout) return T(1);
  const uint64_t idx = g.offset + static_cast<uint64_t>((bh * g.T + t) * g.S + s);
  return dropout_keep(g.seed, g.draw, idx, g.p) ? static_cast<T>(g.inv_keep) : T(0);
}

// Loads rows [r0, r0+n) of head (b, h) of x into dst (rows × D, zero beyond n).
template <typename T>
__device__ __forceinline__ void load_tile(T* dst, const T* x, S4 st, int64_t b, int64_t h, int64_t r0, int n, int rows,
                                          int64_t D) {
  const T* base = x + b * st.b + h * st.h;
  for (int64_t idx = threadIdx.x; idx < rows * D; idx += blockDim.x) {
    const int r = static_cast<int>(idx / D);
    const int64_t d = idx % D;
    dst[idx] = r < n ? base[(r0 + r) * st.t + d * st.d] : T(0);
  }
}

template <typename T>
__device__ __forceinline__ T dot_smem(const T* a, const T* b, int64_t D) {
  T acc = T(0);
  for (int64_t d = 0; d < D; ++d) acc += a[d] * b[d];
  return acc;
}

template <typename T>
__global__ void __launch_bounds__(kAttnThreads) attn_fwd_kernel(const T* __restrict__ q, S4 sq, const T* __restrict__ k,
                                                                S4 sk, const T* __restrict__ v, S4 sv,
                                                                const int32_t* __restrict__ pad, Geo g, int BQ, int BK,
                                                                T* __restrict__ out, T* __restrict__ lse) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int64_t Dk = g.Dk, Dv = g.Dv;
  T* sQ = reinterpret_cast<T*>(smem_raw);
  T* sK = sQ + BQ * Dk;
  T* sV = sK + BK * Dk;
  T* sP = sV + BK * Dv;
  T* sAcc = sP + BQ * BK;
  T* sM = sAcc + BQ * Dv;
  T* sL = sM + BQ;
  T* sAlpha = sL + BQ;

  const int64_t bh = blockIdx.x, b = bh / g.H, h = bh % g.H;
  const int64_t t0 = static_cast<int64_t>(blockIdx.y) * BQ;
  const int nq = imin64(BQ, g.T - t0);
  const T scale = static_cast<T>(g.scale);

  load_tile(sQ, q, sq, b, h, t0, nq, BQ, Dk);
  for (int64_t idx = threadIdx.x; idx < BQ * Dv; idx += blockDim.x) sAcc[idx] = T(0);
  for (int r = threadIdx.x; r < BQ; r += blockDim.x) sM[r] = -INFINITY, sL[r] = T(0), sAlpha[r] = T(0);

  const int tpr = blockDim.x / BQ;  // threads per row in the softmax step (a power of two ≤ 32)
  const int my_row = threadIdx.x / tpr, my_j = threadIdx.x % tpr;
  const int64_t ncols = visible(g, t0 + nq - 1);
  for (int64_t s0 = 0; s0 < ncols; s0 += BK) {
    const int nk = imin64(BK, ncols - s0);
    __syncthreads();  // the previous tile's sK / sV / sP are no longer read
    load_tile(sK, k, sk, b, h, s0, nk, BK, Dk);
    load_tile(sV, v, sv, b, h, s0, nk, BK, Dv);
    __syncthreads();
    for (int idx = threadIdx.x; idx < BQ * BK; idx += blockDim.x) {
      const int r = idx / BK, c = idx % BK;
      T val = -INFINITY;
      if (r < nq && c < nk && allowed(g, pad, b, t0 + r, s0 + c)) val = dot_smem(sQ + r * Dk, sK + c * Dk, Dk) * scale;
      sP[idx] = val;
    }
    __syncthreads();
    {
      // Row my_row: fold this tile into the running (m, l); tpr neighbouring lanes share a row.
      const int r = my_row;
      OnlineLse<T> st;
      for (int c = my_j; c < BK; c += tpr) {
        const T x = sP[r * BK + c];
        if (x != -INFINITY) math::online_lse_add(st, x);
      }
      for (int o = tpr >> 1; o > 0; o >>= 1) {
        OnlineLse<T> other;
        other.m = __shfl_xor_sync(0xffffffffu, st.m, o);
        other.s = __shfl_xor_sync(0xffffffffu, st.s, o);
        st = math::online_lse_merge(st, other);
      }
      OnlineLse<T> old;
      old.m = sM[r];
      old.s = sL[r];
      const OnlineLse<T> nw = math::online_lse_merge(old, st);
      const T alpha = old.m == -INFINITY ? T(0) : (old.m == nw.m ? T(1) : static_cast<T>(::exp(old.m - nw.m)));
      for (int c = my_j; c < BK; c += tpr) {
        const T x = sP[r * BK + c];
        sP[r * BK + c] = x == -INFINITY ? T(0) : static_cast<T>(::exp(x - nw.m)) * drop_factor<T>(g, bh, t0 + r, s0 + c);
      }
      __syncwarp();
      if (my_j == 0) sM[r] = nw.m, sL[r] = nw.s, sAlpha[r] = alpha;
    }
    __syncthreads();
    for (int64_t idx = threadIdx.x; idx < BQ * Dv; idx += blockDim.x) {
      const int r = static_cast<int>(idx / Dv);
      const int64_t d = idx % Dv;
      T a = sAcc[idx] * sAlpha[r];
      for (int c = 0; c < nk; ++c) a += sP[r * BK + c] * sV[c * Dv + d];
      sAcc[idx] = a;
    }
  }
  __syncthreads();
  T* o = out + (bh * g.T + t0) * Dv;
  for (int64_t idx = threadIdx.x; idx < nq * Dv; idx += blockDim.x) {
    const int r = static_cast<int>(idx / Dv);
    o[idx] = sM[r] == -INFINITY ? T(0) : sAcc[idx] / sL[r];
  }
  for (int r = threadIdx.x; r < nq; r += blockDim.x)
    lse[bh * g.T + t0 + r] = sM[r] == -INFINITY ? static_cast<T>(-INFINITY) : sM[r] + static_cast<T>(::log(sL[r]));
}

// Dvec[bh, t] = Σ_j dO·O, one warp per row.
template <typename T>
__global__ void attn_rowdot_kernel(const T* __restrict__ dout, S4 sd, const T* __restrict__ out, S4 so, Geo g,
                                   T* __restrict__ Dvec) {
  const int64_t warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t nwarps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  const int lane = threadIdx.x & 31;
  const int64_t rows = g.B * g.H * g.T;
  for (int64_t row = warp; row < rows; row += nwarps) {  // uniform per warp
    const int64_t t = row % g.T, bh = row / g.T, b = bh / g.H, h = bh % g.H;
    const T* a = dout + b * sd.b + h * sd.h + t * sd.t;
    const T* c = out + b * so.b + h * so.h + t * so.t;
    T acc = T(0);
    for (int64_t d = lane; d < g.Dv; d += 32) acc += a[d * sd.d] * c[d * so.d];
    acc = warp_sum(acc);
    if (lane == 0) Dvec[row] = acc;
  }
}

// For one (query tile, key tile) pair: P̃ (dropped weights) into sP and dS into sdS.
template <typename T>
__device__ __forceinline__ void attn_ds_tile(const Geo& g, const int32_t* pad, int64_t b, int64_t bh, int64_t t0, int nq,
                                             int64_t s0, int nk, int BQ, int BK, const T* sQ, const T* sK, const T* sV,
                                             const T* sdO, const T* sLse, const T* sD, T* sP, T* sdS) {
  const T scale = static_cast<T>(g.scale);
  for (int idx = threadIdx.x; idx < BQ * BK; idx += blockDim.x) {
    const int r = idx / BK, c = idx % BK;
    T pt = T(0), ds = T(0);
    if (r < nq && c < nk && sLse[r] != -INFINITY && allowed(g, pad, b, t0 + r, s0 + c)) {
      const T p = static_cast<T>(::exp(dot_smem(sQ + r * g.Dk, sK + c * g.Dk, g.Dk) * scale - sLse[r]));
      const T f = drop_factor<T>(g, bh, t0 + r, s0 + c);
      const T dp = dot_smem(sdO + r * g.Dv, sV + c * g.Dv, g.Dv) * f;
      pt = p * f;
      ds = p * (dp - sD[r]);
    }
    if (sP) sP[idx] = pt;
    sdS[idx] = ds;
  }
}

template <typename T>
__global__ void __launch_bounds__(kAttnThreads)
    attn_dkdv_kernel(const T* __restrict__ q, S4 sq, const T* __restrict__ k, S4 sk, const T* __restrict__ v, S4 sv,
                     const T* __restrict__ dout, S4 sd, const T* __restrict__ lse, const T* __restrict__ Dvec,
                     const int32_t* __restrict__ pad, Geo g, int BQ, int BK, T* __restrict__ dk, T* __restrict__ dv) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int64_t Dk = g.Dk, Dv = g.Dv;
  T* sK = reinterpret_cast<T*>(smem_raw);
  T* sV = sK + BK * Dk;
  T* sQ = sV + BK * Dv;
  T* sdO = sQ + BQ * Dk;
  T* sP = sdO + BQ * Dv;
  T* sdS = sP + BQ * BK;
  T* sdK = sdS + BQ * BK;
  T* sdV = sdK + BK * Dk;
  T* sLse = sdV + BK * Dv;
  T* sD = sLse + BQ;

  const int64_t bh = blockIdx.x, b = bh / g.H, h = bh % g.H;
  const int64_t s0 = static_cast<int64_t>(blockIdx.y) * BK;
  const int nk = imin64(BK, g.S - s0);
  const T scale = static_cast<T>(g.scale);
  load_tile(sK, k, sk, b, h, s0, nk, BK, Dk);
  load_tile(sV, v, sv, b, h, s0, nk, BK, Dv);
  for (int64_t idx = threadIdx.x; idx < BK * Dk; idx += blockDim.x) sdK[idx] = T(0);
  for (int64_t idx = threadIdx.x; idx < BK * Dv; idx += blockDim.x) sdV[idx] = T(0);
  // First query that can see key s0: t + offset ≥ s0.
  int64_t tstart = 0;
  if (g.causal) tstart = s0 - g.causal_offset > 0 ? s0 - g.causal_offset : 0;
  tstart = (tstart / BQ) * BQ;
  for (int64_t t0 = tstart; t0 < g.T; t0 += BQ) {
    const int nq = imin64(BQ, g.T - t0);
    __syncthreads();
    load_tile(sQ, q, sq, b, h, t0, nq, BQ, Dk);
    load_tile(sdO, dout, sd, b, h, t0, nq, BQ, Dv);
    for (int r = threadIdx.x; r < BQ; r += blockDim.x) {
      sLse[r] = r < nq ? lse[bh * g.T + t0 + r] : static_cast<T>(-INFINITY);
      sD[r] = r < nq ? Dvec[bh * g.T + t0 + r] : T(0);
    }
    __syncthreads();
    attn_ds_tile(g, pad, b, bh, t0, nq, s0, nk, BQ, BK, sQ, sK, sV, sdO, sLse, sD, sP, sdS);
    __syncthreads();
    for (int64_t idx = threadIdx.x; idx < BK * Dv; idx += blockDim.x) {
      const int c = static_cast<int>(idx / Dv);
      const int64_t d = idx % Dv;
      T a = T(0);
      for (int r = 0; r < nq; ++r) a += sP[r * BK + c] * sdO[r * Dv + d];
      sdV[idx] += a;
    }
    for (int64_t idx = threadIdx.x; idx < BK * Dk; idx += blockDim.x) {
      const int c = static_cast<int>(idx / Dk);
      const int64_t d = idx % Dk;
      T a = T(0);
      for (int r = 0; r < nq; ++r) a += sdS[r * BK + c] * sQ[r * Dk + d];
      sdK[idx] += scale * a;
    }
  }
  __syncthreads();
  for (int64_t idx = threadIdx.x; idx < nk * Dk; idx += blockDim.x) dk[(bh * g.S + s0) * Dk + idx] = sdK[idx];
  for (int64_t idx = threadIdx.x; idx < nk * Dv; idx += blockDim.x) dv[(bh * g.S + s0) * Dv + idx] = sdV[idx];
}

template <typename T>
__global__ void __launch_bounds__(kAttnThreads)
    attn_dq_kernel(const T* __restrict__ q, S4 sq, const T* __restrict__ k, S4 sk, const T* __restrict__ v, S4 sv,
                   const T* __restrict__ dout, S4 sd, const T* __restrict__ lse, const T* __restrict__ Dvec,
                   const int32_t* __restrict__ pad, Geo g, int BQ, int BK, T* __restrict__ dq) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int64_t Dk = g.Dk, Dv = g.Dv;
  T* sQ = reinterpret_cast<T*>(smem_raw);
  T* sdO = sQ + BQ * Dk;
  T* sK = sdO + BQ * Dv;
  T* sV = sK + BK * Dk;
  T* sdS = sV + BK * Dv;
  T* sdQ = sdS + BQ * BK;
  T* sLse = sdQ + BQ * Dk;
  T* sD = sLse + BQ;

  const int64_t bh = blockIdx.x, b = bh / g.H, h = bh % g.H;
  const int64_t t0 = static_cast<int64_t>(blockIdx.y) * BQ;
  const int nq = imin64(BQ, g.T - t0);
  const T scale = static_cast<T>(g.scale);
  load_tile(sQ, q, sq, b, h, t0, nq, BQ, Dk);
  load_tile(sdO, dout, sd, b, h, t0, nq, BQ, Dv);
  for (int64_t idx = threadIdx.x; idx < BQ * Dk; idx += blockDim.x) sdQ[idx] = T(0);
  for (int r = threadIdx.x; r < BQ; r += blockDim.x) {
    sLse[r] = r < nq ? lse[bh * g.T + t0 + r] : static_cast<T>(-INFINITY);
    sD[r] = r < nq ? Dvec[bh * g.T + t0 + r] : T(0);
  }
  const int64_t ncols = visible(g, t0 + nq - 1);
  for (int64_t s0 = 0; s0 < ncols; s0 += BK) {
    const int nk = imin64(BK, ncols - s0);
    __syncthreads();
    load_tile(sK, k, sk, b, h, s0, nk, BK, Dk);
    load_tile(sV, v, sv, b, h, s0, nk, BK, Dv);
    __syncthreads();
    attn_ds_tile<T>(g, pad, b, bh, t0, nq, s0, nk, BQ, BK, sQ, sK, sV, sdO, sLse, sD, nullptr, sdS);
    __syncthreads();
    for (int64_t idx = threadIdx.x; idx < BQ * Dk; idx += blockDim.x) {
      const int r = static_cast<int>(idx / Dk);
      const int64_t d = idx % Dk;
      T a = T(0);
      for (int c = 0; c < nk; ++c) a += sdS[r * BK + c] * sK[c * Dk + d];
      sdQ[idx] += scale * a;
    }
  }
  __syncthreads();
  for (int64_t idx = threadIdx.x; idx < nq * Dk; idx += blockDim.x) dq[(bh * g.T + t0) * Dk + idx] = sdQ[idx];
}

template <typename M>
__global__ void pad_flags_kernel(const M* __restrict__ mask, int64_t st0, int64_t st1, int64_t B, int64_t S,
                                 int32_t* __restrict__ flags) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < B * S;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    flags[i] = mask[(i / S) * st0 + (i % S) * st1] != M(0) ? 1 : 0;
}

// Padding flags (B·S int32, 1 = padded) on q's device, or undefined when there is no mask.
Tensor pad_flags(const Tensor& mask_in, const Tensor& q, const char* op) {
  if (!mask_in.defined()) return Tensor();
  const Tensor mask = mask_in.device() == q.device() ? mask_in : mask_in.to(q.device());
  const int64_t B = mask.size(0), S = mask.size(1);
  Tensor flags = empty({std::max<int64_t>(1, B * S)}, DType::i32, q.device());
  if (B * S == 0) return flags;
  const int dev = q.device().index;
  cudaStream_t stream = stream_for(dev, op);
  dispatch_all(mask.dtype(), op, [&](auto tag) {
    using M = decltype(tag);
    pad_flags_kernel<M><<<grid_for(B * S, dev), kThreads, 0, stream>>>(mask.data<M>(), mask.stride(0), mask.stride(1),
                                                                       B, S, flags.data<int32_t>());
  });
  KNOT_CUDA_LAUNCH_CHECK(op);
  return flags;
}

Geo geometry(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p) {
  Geo g{};
  g.B = q.size(0), g.H = q.size(1), g.T = q.size(2), g.S = k.size(2), g.Dk = q.size(3), g.Dv = v.size(3);
  g.causal_offset = g.S - g.T;
  g.causal = p.causal;
  g.dropout = p.dropout_p > 0.0;
  g.p = static_cast<float>(p.dropout_p);
  g.seed = p.seed, g.draw = p.draw, g.offset = p.dropout_offset;
  g.scale = p.scale;
  g.inv_keep = g.dropout ? 1.0 / (1.0 - p.dropout_p) : 1.0;
  return g;
}

size_t smem_limit(int dev, const char* op) {
  int v = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev), op);
  return static_cast<size_t>(v);
}

// The largest tile (32, 16 or 8 rows) for which bytes(tile) fits; throws when none does.
template <typename F>
int pick_tile(size_t limit, F bytes, const Geo& g, const char* op) {
  for (int t : {32, 16, 8})
    if (bytes(t) <= limit) return t;
  KNOT_FAIL("{}: head dims Dk={} Dv={} need more shared memory than the device's {} bytes", op, g.Dk, g.Dv, limit);
}

template <typename Kernel>
void allow_smem(Kernel kernel, size_t bytes, const char* op) {
  if (bytes > 48 * 1024)
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)), op);
}

}  // namespace

AttentionFwd attention_fwd(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                           const AttentionParams& p) {
  const char* op = "scaled_dot_product_attention";
  const Geo g = geometry(q, k, v, p);
  AttentionFwd f{empty({g.B, g.H, g.T, g.Dv}, q.dtype(), q.device()), empty({g.B, g.H, g.T}, q.dtype(), q.device())};
  if (g.B * g.H * g.T == 0) return f;
  const int dev = q.device().index;
  cudaStream_t stream = stream_for(dev, op);
  const Tensor pad = pad_flags(mask, q, op);
  const size_t limit = smem_limit(dev, op);
  dispatch_float(q.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    auto bytes = [&](int t) {
      return sizeof(T) * static_cast<size_t>(2 * t * g.Dk + 2 * t * g.Dv + t * t + 3 * t);
    };
    const int B = pick_tile(limit, bytes, g, op);
    const size_t sm = bytes(B);
    allow_smem(attn_fwd_kernel<T>, sm, op);
    const dim3 grid(static_cast<unsigned>(g.B * g.H), static_cast<unsigned>((g.T + B - 1) / B));
    attn_fwd_kernel<T><<<grid, kAttnThreads, sm, stream>>>(q.data<T>(), strides_of(q), k.data<T>(), strides_of(k),
                                                           v.data<T>(), strides_of(v),
                                                           pad.defined() ? pad.data<int32_t>() : nullptr, g, B, B,
                                                           f.out.template data<T>(), f.lse.template data<T>());
    KNOT_CUDA_LAUNCH_CHECK(op);
  });
  return f;
}

AttentionBwd attention_bwd(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                           const Tensor& lse_in, const Tensor& mask, const AttentionParams& p) {
  const char* op = "scaled_dot_product_attention backward";
  const Geo g = geometry(q, k, v, p);
  const Device dv = q.device();
  AttentionBwd r{empty({g.B, g.H, g.T, g.Dk}, q.dtype(), dv), empty({g.B, g.H, g.S, g.Dk}, q.dtype(), dv),
                 empty({g.B, g.H, g.S, g.Dv}, q.dtype(), dv)};
  if (g.B * g.H == 0) return r;
  if (g.T == 0) {  // no queries: every gradient is an empty sum
    r.dk = zeros_on(r.dk.shape(), q.dtype(), dv, op);
    r.dv = zeros_on(r.dv.shape(), q.dtype(), dv, op);
    return r;
  }
  const Tensor lse = dense(lse_in);
  const int dev = dv.index;
  cudaStream_t stream = stream_for(dev, op);
  const Tensor pad = pad_flags(mask, q, op);
  const size_t limit = smem_limit(dev, op);
  dispatch_float(q.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const int32_t* pp = pad.defined() ? pad.data<int32_t>() : nullptr;
    Tensor Dvec = empty({g.B * g.H * g.T}, q.dtype(), dv);
    attn_rowdot_kernel<T><<<grid_for(g.B * g.H * g.T * 32, dev), kThreads, 0, stream>>>(
        dout.data<T>(), strides_of(dout), out.data<T>(), strides_of(out), g, Dvec.data<T>());
    KNOT_CUDA_LAUNCH_CHECK(op);
    auto bytes_kv = [&](int t) {
      return sizeof(T) * static_cast<size_t>(3 * t * g.Dk + 3 * t * g.Dv + 2 * t * t + 2 * t);
    };
    auto bytes_q = [&](int t) {
      return sizeof(T) * static_cast<size_t>(3 * t * g.Dk + 2 * t * g.Dv + t * t + 2 * t);
    };
    if (g.S > 0) {
      const int B = pick_tile(limit, bytes_kv, g, op);
      const size_t sm = bytes_kv(B);
      allow_smem(attn_dkdv_kernel<T>, sm, op);
      const dim3 grid(static_cast<unsigned>(g.B * g.H), static_cast<unsigned>((g.S + B - 1) / B));
      attn_dkdv_kernel<T><<<grid, kAttnThreads, sm, stream>>>(
          q.data<T>(), strides_of(q), k.data<T>(), strides_of(k), v.data<T>(), strides_of(v), dout.data<T>(),
          strides_of(dout), lse.data<T>(), Dvec.data<T>(), pp, g, B, B, r.dk.template data<T>(),
          r.dv.template data<T>());
      KNOT_CUDA_LAUNCH_CHECK(op);
    }
    {
      const int B = pick_tile(limit, bytes_q, g, op);
      const size_t sm = bytes_q(B);
      allow_smem(attn_dq_kernel<T>, sm, op);
      const dim3 grid(static_cast<unsigned>(g.B * g.H), static_cast<unsigned>((g.T + B - 1) / B));
      attn_dq_kernel<T><<<grid, kAttnThreads, sm, stream>>>(q.data<T>(), strides_of(q), k.data<T>(), strides_of(k),
                                                            v.data<T>(), strides_of(v), dout.data<T>(),
                                                            strides_of(dout), lse.data<T>(), Dvec.data<T>(), pp, g, B,
                                                            B, r.dq.template data<T>());
      KNOT_CUDA_LAUNCH_CHECK(op);
    }
  });
  return r;
}

}  // namespace knot::kernels::cuda
