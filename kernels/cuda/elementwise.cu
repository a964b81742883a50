// CUDA elementwise kernels (see kernels/elementwise.h): unary maps and their backward, broadcasting
// binary ops, copies between any two devices with dtype conversion, fill, axpy and scale.
//
// The per-element math is the KNOT_HD code of kernels/math.h that the CPU loops run, so CPU and GPU
// compute the same function. Two paths per kernel:
//   - contiguous: a grid-stride loop over 16-byte vectors (float4 / double2 / int4 / longlong2
//     shaped) when every pointer is 16-byte aligned, scalar otherwise and for the tail;
//   - strided/broadcast: an Indexer (sizes and per-operand strides, passed by value) turns the flat
//     output index into operand offsets.
// Ops are compile-time template arguments (one kernel per op and dtype); the path is a run-time
// argument, so it costs no extra instantiations.
#include <cmath>
#include <cstdint>

#include "kernels/cuda/common.cuh"
#include "kernels/elementwise.h"
#include "kernels/math.h"

namespace knot::kernels::cuda {
namespace {

using namespace knot::cuda_detail;

template <typename T>
struct alignas(16) Vec16 {
  static constexpr int kN = 16 / sizeof(T);
  T v[kN];
};

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }


// Integer pow has no device overload; go through double as the host's std::pow(int, int) does.
template <BinaryOp OP, typename T>
__device__ __forceinline__ T binary_dev(T x, T y) {
  if constexpr (OP == BinaryOp::pow && !std::is_floating_point_v<T>) {
    return static_cast<T>(::pow(static_cast<double>(x), static_cast<double>(y)));
  } else {
    return math::binary_fwd<OP>(x, y);
  }
}

__device__ __forceinline__ int64_t thread_index() { return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t thread_stride() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

// ---- kernels ----

// y = f(x), x and y contiguous with n elements.
template <UnaryOp OP, typename T>
__global__ void unary_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t n, T a, T b, bool vec) {
  int64_t start = 0;
  if (vec) {
    constexpr int V = Vec16<T>::kN;
    const int64_t nv = n / V;
    const auto* xv = reinterpret_cast<const Vec16<T>*>(x);
    auto* yv = reinterpret_cast<Vec16<T>*>(y);
    for (int64_t i = thread_index(); i < nv; i += thread_stride()) {
      const Vec16<T> in = xv[i];
      Vec16<T> out;
#pragma unroll
      for (int k = 0; k < V; ++k) out.v[k] = math::unary_fwd<OP>(in.v[k], a, b);
      yv[i] = out;
    }
    start = nv * V;
  }
  for (int64_t i = start + thread_index(); i < n; i += thread_stride()) y[i] = math::unary_fwd<OP>(x[i], a, b);
}

// gx = g * f'(x, y); x or y may be null when the derivative does not read it.
template <UnaryOp OP, typename T>
__global__ void unary_bwd_kernel(const T* __restrict__ g, const T* __restrict__ x, const T* __restrict__ y,
                                 T* __restrict__ gx, int64_t n, T a, T b) {
  for (int64_t i = thread_index(); i < n; i += thread_stride()) {
    const T xv = x ? x[i] : T(0), yv = y ? y[i] : T(0);
    gx[i] = g[i] * math::unary_deriv<OP>(xv, yv, a, b);
  }
}

enum class BinaryPath : int { contiguous, y_scalar, strided };

// out = x (op) y; out contiguous. Paths: both contiguous of out's shape; x contiguous and y one
// element; anything else through the indexer (offsets include the tensors' own offsets).
template <BinaryOp OP, typename T>
__global__ void binary_kernel(const T* __restrict__ x, const T* __restrict__ y, T* __restrict__ out, int64_t n,
                              BinaryPath path, bool vec, Indexer<2> ix) {
  if (path == BinaryPath::strided) {
    for (int64_t i = thread_index(); i < n; i += thread_stride()) {
      int64_t off[2];
      ix.offsets(i, off);
      out[i] = binary_dev<OP>(x[off[0]], y[off[1]]);
    }
    return;
  }
  const bool scalar = path == BinaryPath::y_scalar;
  const T ys = scalar ? y[0] : T(0);
  int64_t start = 0;
  if (vec) {
    constexpr int V = Vec16<T>::kN;
    const int64_t nv = n / V;
    const auto* xv = reinterpret_cast<const Vec16<T>*>(x);
    const auto* yv = reinterpret_cast<const Vec16<T>*>(y);
    auto* ov = reinterpret_cast<Vec16<T>*>(out);
    for (int64_t i = thread_index(); i < nv; i += thread_stride()) {
      const Vec16<T> a = xv[i];
      Vec16<T> r;
      if (scalar) {
#pragma unroll
        for (int k = 0; k < V; ++k) r.v[k] = binary_dev<OP>(a.v[k], ys);
      } else {
        const Vec16<T> b = yv[i];
#pragma unroll
        for (int k = 0; k < V; ++k) r.v[k] = binary_dev<OP>(a.v[k], b.v[k]);
      }
      ov[i] = r;
    }
    start = nv * V;
  }
  for (int64_t i = start + thread_index(); i < n; i += thread_stride())
    out[i] = binary_dev<OP>(x[i], scalar ? ys : y[i]);
}

// dst[...] = D(src[...]); contiguous (dst, src already offset) or through the indexer (from bases).
template <typename D, typename S>
__global__ void copy_kernel(D* __restrict__ dst, const S* __restrict__ src, int64_t n, bool contiguous, Indexer<2> ix) {
  if (contiguous) {
    for (int64_t i = thread_index(); i < n; i += thread_stride()) dst[i] = static_cast<D>(src[i]);
    return;
  }
  for (int64_t i = thread_index(); i < n; i += thread_stride()) {
    int64_t off[2];
    ix.offsets(i, off);
    dst[off[0]] = static_cast<D>(src[off[1]]);
  }
}

template <typename T>
__global__ void fill_kernel(T* __restrict__ base, int64_t n, T v, Indexer<1> ix) {
  for (int64_t i = thread_index(); i < n; i += thread_stride()) {
    int64_t off[1];
    ix.offsets(i, off);
    base[off[0]] = v;
  }
}

template <typename T>
__global__ void scale_kernel(T* __restrict__ base, int64_t n, T s, Indexer<1> ix) {
  for (int64_t i = thread_index(); i < n; i += thread_stride()) {
    int64_t off[1];
    ix.offsets(i, off);
    base[off[0]] *= s;
  }
}

// dst += a * src; dst and src may alias (an in-place x += x), so no __restrict__.
template <typename T>
__global__ void axpy_kernel(T* dst, const T* src, int64_t n, T a, Indexer<2> ix) {
  for (int64_t i = thread_index(); i < n; i += thread_stride()) {
    int64_t off[2];
    ix.offsets(i, off);
    dst[off[0]] += a * src[off[1]];
  }
}

// ---- host helpers ----

// Indexer over t's own layout (shape, strides, offset).
Indexer<1> layout_indexer(const Tensor& t) {
  Indexer<1> ix;
  ix.nd = static_cast<int>(t.dim());
  for (int d = 0; d < ix.nd; ++d) {
    ix.size[d] = t.shape()[d];
    ix.stride[0][d] = t.strides()[d];
  }
  ix.base[0] = t.offset();
  return ix;
}

// Indexer over dst's shape: operand 0 is dst's layout, operand 1 is src broadcast to it.
Indexer<2> pair_indexer(const Tensor& dst, const Tensor& src) {
  Indexer<2> ix;
  ix.nd = static_cast<int>(dst.dim());
  for (int d = 0; d < ix.nd; ++d) {
    ix.size[d] = dst.shape()[d];
    ix.stride[0][d] = dst.strides()[d];
  }
  broadcast_strides_into(src, dst.shape(), ix.stride[1]);
  ix.base[0] = dst.offset();
  ix.base[1] = src.offset();
  return ix;
}

bool plain_copy(const Tensor& dst, const Tensor& src) {
  return dst.is_contiguous() && src.is_contiguous() && dst.shape() == src.shape() && dst.dtype() == src.dtype();
}

// dst and src on the same CUDA device: any strides, broadcasting src, converting dtypes.
void device_copy(const Tensor& dst, const Tensor& src) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  const int dev = dst.device().index;
  cudaStream_t stream = stream_for(dev, "copy");
  if (plain_copy(dst, src)) {
    CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), dst.nbytes(), cudaMemcpyDeviceToDevice, stream), "copy");
    return;
  }
  const bool contiguous = dst.is_contiguous() && src.is_contiguous() && dst.shape() == src.shape();
  const Indexer<2> ix = pair_indexer(dst, src);
  dispatch_all(dst.dtype(), "copy", [&](auto dtag) {
    using D = decltype(dtag);
    dispatch_all(src.dtype(), "copy", [&](auto stag) {
      using S = decltype(stag);
      D* pd = contiguous ? static_cast<D*>(dst.raw_data()) : base_ptr<D>(dst);
      const S* ps = contiguous ? static_cast<const S*>(src.raw_data()) : base_ptr<const S>(src);
      copy_kernel<D, S><<<grid_for(n, dev), kThreads, 0, stream>>>(pd, ps, n, contiguous, ix);
      KNOT_CUDA_LAUNCH_CHECK("copy");
    });
  });
}

}  // namespace
}  // namespace knot::kernels::cuda

namespace knot::kernels::cuda {

Tensor unary(UnaryOp op, const Tensor& x_in, double a, double b) {
  const char* name = unary_name(op);
  const Tensor x = dense(x_in);
  Tensor y = empty_on(x.shape(), x.dtype(), x);
  const int64_t n = x.numel();
  if (n == 0) return y;
  const int dev = x.device().index;
  cudaStream_t stream = stream_for(dev, name);
  dispatch_float(x.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    const bool vec = aligned16(px) && aligned16(py);
    with_unary_op(op, [&](auto opc) {
      constexpr UnaryOp OP = decltype(opc)::value;
      unary_kernel<OP, T><<<grid_for(vec ? n / Vec16<T>::kN + 1 : n, dev), kThreads, 0, stream>>>(
          px, py, n, static_cast<T>(a), static_cast<T>(b), vec);
    });
  });
  KNOT_CUDA_LAUNCH_CHECK(name);
  return y;
}

Tensor unary_bwd(UnaryOp op, const Tensor& x_in, const Tensor& y_in, const Tensor& g_in, double a, double b) {
  const char* name = unary_name(op);
  const Tensor g = dense(g_in);
  const Tensor x = x_in.defined() ? dense(x_in) : Tensor();
  const Tensor y = y_in.defined() ? dense(y_in) : Tensor();
  if (x.defined()) check_same_device(name, g, x);
  if (y.defined()) check_same_device(name, g, y);
  Tensor gx = empty_on(g.shape(), g.dtype(), g);
  const int64_t n = g.numel();
  if (n == 0) return gx;
  const int dev = g.device().index;
  cudaStream_t stream = stream_for(dev, name);
  dispatch_float(g.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.defined() ? x.data<T>() : nullptr;
    const T* py = y.defined() ? y.data<T>() : nullptr;
    with_unary_op(op, [&](auto opc) {
      constexpr UnaryOp OP = decltype(opc)::value;
      unary_bwd_kernel<OP, T><<<grid_for(n, dev), kThreads, 0, stream>>>(g.data<T>(), px, py, gx.data<T>(), n,
                                                                         static_cast<T>(a), static_cast<T>(b));
    });
  });
  KNOT_CUDA_LAUNCH_CHECK(name);
  return gx;
}

Tensor binary(BinaryOp op, const Tensor& x, const Tensor& y) {
  const char* name = binary_name(op);
  const Shape out_shape = broadcast_shapes(x.shape(), y.shape(), name);
  Tensor out = empty(out_shape, x.dtype(), x.device());
  const int64_t n = out.numel();
  if (n == 0) return out;
  const int dev = x.device().index;
  cudaStream_t stream = stream_for(dev, name);
  BinaryPath path = BinaryPath::strided;
  if (x.shape() == y.shape() && x.is_contiguous() && y.is_contiguous()) path = BinaryPath::contiguous;
  else if (y.numel() == 1 && x.shape() == out_shape && x.is_contiguous()) path = BinaryPath::y_scalar;
  Indexer<2> ix;
  if (path == BinaryPath::strided) {
    ix.nd = static_cast<int>(out_shape.size());
    for (int d = 0; d < ix.nd; ++d) ix.size[d] = out_shape[d];
    broadcast_strides_into(x, out_shape, ix.stride[0]);
    broadcast_strides_into(y, out_shape, ix.stride[1]);
    ix.base[0] = x.offset();
    ix.base[1] = y.offset();
  }
  dispatch_all(x.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    const bool strided = path == BinaryPath::strided;
    const T* px = strided ? base_ptr<const T>(x) : static_cast<const T*>(x.raw_data());
    const T* py = strided ? base_ptr<const T>(y) : static_cast<const T*>(y.raw_data());
    T* po = out.data<T>();
    const bool vec = !strided && aligned16(px) && aligned16(po) && (path == BinaryPath::y_scalar || aligned16(py));
    with_binary_op(op, [&](auto opc) {
      constexpr BinaryOp OP = decltype(opc)::value;
      binary_kernel<OP, T><<<grid_for(vec ? n / Vec16<T>::kN + 1 : n, dev), kThreads, 0, stream>>>(px, py, po, n, path,
                                                                                                   vec, ix);
    });
  });
  KNOT_CUDA_LAUNCH_CHECK(name);
  return out;
}

void copy(const Tensor& dst, const Tensor& src) {
  KNOT_CHECK(broadcast_shapes(dst.shape(), src.shape(), "copy") == dst.shape(),
             "copy: source shape {} cannot be broadcast to destination shape {}", shape_str(src.shape()),
             shape_str(dst.shape()));
  if (dst.numel() == 0) return;
  if (dst.is_cpu() && src.is_cpu()) return cpu::copy(dst, src);

  if (dst.is_cuda() && src.is_cpu()) {  // host -> device: convert/broadcast on the host, one transfer
    const int dev = dst.device().index;
    cudaStream_t stream = stream_for(dev, "copy");
    Tensor host = src;
    if (!(src.is_contiguous() && src.shape() == dst.shape() && src.dtype() == dst.dtype())) {
      host = empty(dst.shape(), dst.dtype());
      cpu::copy(host, src);
    }
    const Tensor target = dst.is_contiguous() ? dst : empty(dst.shape(), dst.dtype(), dst.device());
    // From pageable memory the call returns once the source has been staged, so `host` may die.
    CUDA_CHECK(cudaMemcpyAsync(target.raw_data(), host.raw_data(), dst.nbytes(), cudaMemcpyHostToDevice, stream),
               "copy");
    if (!target.is_same(dst)) device_copy(dst, target);
    return;
  }

  if (dst.is_cpu() && src.is_cuda()) {  // device -> host: convert/broadcast on the device, one transfer
    const int dev = src.device().index;
    cudaStream_t stream = stream_for(dev, "copy");
    Tensor staged = src;
    if (!(src.is_contiguous() && src.shape() == dst.shape() && src.dtype() == dst.dtype())) {
      staged = empty(dst.shape(), dst.dtype(), src.device());
      device_copy(staged, src);
    }
    const Tensor target = dst.is_contiguous() ? dst : empty(dst.shape(), dst.dtype());
    CUDA_CHECK(cudaMemcpyAsync(target.raw_data(), staged.raw_data(), dst.nbytes(), cudaMemcpyDeviceToHost, stream),
               "copy");
    CUDA_CHECK(cudaStreamSynchronize(stream), "copy");
    if (!target.is_same(dst)) cpu::copy(dst, target);
    return;
  }

  if (dst.device() == src.device()) return device_copy(dst, src);

  // Between two GPUs: make a contiguous image of dst on the source device, then a peer copy.
  const int sdev = src.device().index, ddev = dst.device().index;
  cudaStream_t sstream = stream_for(sdev, "copy");
  Tensor staged = src;
  if (!(src.is_contiguous() && src.shape() == dst.shape() && src.dtype() == dst.dtype())) {
    staged = empty(dst.shape(), dst.dtype(), src.device());
    device_copy(staged, src);
  }
  CUDA_CHECK(cudaStreamSynchronize(sstream), "copy");
  cudaStream_t dstream = stream_for(ddev, "copy");
  const Tensor target = dst.is_contiguous() ? dst : empty(dst.shape(), dst.dtype(), dst.device());
  CUDA_CHECK(cudaMemcpyPeerAsync(target.raw_data(), ddev, staged.raw_data(), sdev, dst.nbytes(), dstream), "copy");
  CUDA_CHECK(cudaStreamSynchronize(dstream), "copy");  // `staged` may be freed once we return
  if (!target.is_same(dst)) device_copy(dst, target);
}

void fill(const Tensor& dst, double value) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  const int dev = dst.device().index;
  cudaStream_t stream = stream_for(dev, "fill");
  if (value == 0.0 && !std::signbit(value) && dst.is_contiguous()) {  // +0.0 is all-zero bits in every dtype
    CUDA_CHECK(cudaMemsetAsync(dst.raw_data(), 0, dst.nbytes(), stream), "fill");
    return;
  }
  const Indexer<1> ix = layout_indexer(dst);
  dispatch_all(dst.dtype(), "fill", [&](auto tag) {
    using T = decltype(tag);
    fill_kernel<T><<<grid_for(n, dev), kThreads, 0, stream>>>(base_ptr<T>(dst), n, static_cast<T>(value), ix);
  });
  KNOT_CUDA_LAUNCH_CHECK("fill");
}

void axpy(const Tensor& dst, const Tensor& src, double alpha) {
  KNOT_CHECK(broadcast_shapes(dst.shape(), src.shape(), "add_") == dst.shape(),
             "add_: shape {} cannot be broadcast to the destination's shape {}", shape_str(src.shape()),
             shape_str(dst.shape()));
  check_same_dtype("add_", dst, src);
  const int64_t n = dst.numel();
  if (n == 0) return;
  const int dev = dst.device().index;
  cudaStream_t stream = stream_for(dev, "add_");
  const Indexer<2> ix = pair_indexer(dst, src);
  dispatch_all(dst.dtype(), "add_", [&](auto tag) {
    using T = decltype(tag);
    axpy_kernel<T><<<grid_for(n, dev), kThreads, 0, stream>>>(base_ptr<T>(dst), base_ptr<const T>(src), n,
                                                              static_cast<T>(alpha), ix);
  });
  KNOT_CUDA_LAUNCH_CHECK("add_");
}

void scale(const Tensor& dst, double s) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  const int dev = dst.device().index;
  cudaStream_t stream = stream_for(dev, "mul_");
  const Indexer<1> ix = layout_indexer(dst);
  dispatch_all(dst.dtype(), "mul_", [&](auto tag) {
    using T = decltype(tag);
    scale_kernel<T><<<grid_for(n, dev), kThreads, 0, stream>>>(base_ptr<T>(dst), n, static_cast<T>(s), ix);
  });
  KNOT_CUDA_LAUNCH_CHECK("mul_");
}

}  // namespace knot::kernels::cuda
