// Shared internals of the CUDA kernel files: the per-device stream and cuBLAS handle, launch sizes,
// dtype dispatch for device code, the strided-offset indexer (up to kMaxDims dims, passed to
// kernels by value) and block/warp reductions in a fixed order (deterministic, no atomics).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "core/dispatch.h"
#include "core/shape.h"
#include "core/tensor.h"
#include "kernels/cuda/check.cuh"

#include "kernels/nn_math.h"

namespace knot::cuda_detail {

// Makes `device` current and returns its stream (created on first use; non-blocking w.r.t. the
// legacy default stream). Throws "<op>: no CUDA device ..." where there is none.
cudaStream_t stream_for(int device, const char* op);
inline cudaStream_t stream_for(const Tensor& t, const char* op) { return stream_for(t.device().index, op); }
// The device's cuBLAS handle, bound to its stream, with the math mode set by cuda_set_allow_tf32.
cublasHandle_t cublas_for(int device, const char* op);
// Waits for the device's stream; errors from earlier kernels surface here, named with `op`.
void sync_stream(int device, const char* op);
int multiprocessor_count(int device);

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n items: enough to fill the chip, never more than needed.
inline unsigned grid_for(int64_t n, int device, int threads = kThreads) {
  const int64_t need = (n + threads - 1) / threads;
  const int64_t cap = static_cast<int64_t>(multiprocessor_count(device)) * 32;
  const int64_t g = need < cap ? need : cap;
  return static_cast<unsigned>(g < 1 ? 1 : g);
}

// Offsets of up to N operands for a flat row-major index over `size` (nd dims). Strides are in
// elements; a broadcast dim has stride 0.
template <int N>
struct Indexer {
  int nd = 0;
  int64_t size[kMaxDims] = {};
  int64_t stride[N][kMaxDims] = {};
  int64_t base[N] = {};

  __device__ __forceinline__ void offsets(int64_t i, int64_t (&off)[N]) const {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = base[k];
    for (int d = nd - 1; d >= 0; --d) {
      const int64_t c = i % size[d];
      i /= size[d];
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += c * stride[k][d];
    }
  }
};

// Strides of t viewed at shape `out` under broadcasting (0 where t's dim is 1 or missing).
inline void broadcast_strides_into(const Tensor& t, const Shape& out, int64_t* dst) {
  const size_t off = out.size() - t.shape().size();
  for (size_t i = 0; i < out.size(); ++i) dst[i] = 0;
  for (size_t i = 0; i < t.shape().size(); ++i) dst[off + i] = t.shape()[i] == 1 ? 0 : t.strides()[i];
}

// Accumulator of a reduction: f32 sums accumulate in f64 as on the CPU; integers in i64.
template <typename T>
using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

// Sum across a warp in a fixed butterfly order: every lane ends with the same total.
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum across a block of blockDim.x threads (a multiple of 32, at most 1024); every thread gets the
// total. `scratch` holds 32 values. Fixed order, so the same launch gives the same bits every run.
template <typename T>
__device__ __forceinline__ T block_sum(T v, T* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : T(0);
  return warp_sum(v);
}

// Pointer to element 0 of the storage, typed (kernels add the tensor's offset themselves).
template <typename T>
inline T* base_ptr(const Tensor& t) { return static_cast<T*>(t.storage()->data); }

// dense(x), a contiguous copy when x is not contiguous, is kernels::dense (kernels/dispatch.h).
// An empty contiguous tensor on `like`'s device.
inline Tensor empty_on(const Shape& s, DType t, const Tensor& like) { return empty(s, t, like.device()); }
// Zero-filled contiguous tensor on a CUDA device (cudaMemsetAsync on its stream).
Tensor zeros_on(const Shape& s, DType t, Device d, const char* op);

// Merges the online (max, Σexp) states of the 32 lanes of a warp (kernels/nn_math.h); every lane
// ends with the merged state. Used by the softmax and cross-entropy row kernels.
__device__ __forceinline__ math::OnlineLse<double> warp_merge(math::OnlineLse<double> st) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    math::OnlineLse<double> other;
    other.m = __shfl_xor_sync(0xffffffffu, st.m, o);
    other.s = __shfl_xor_sync(0xffffffffu, st.s, o);
    st = math::online_lse_merge(st, other);
  }
  return st;
}

}  // namespace knot::cuda_detail
