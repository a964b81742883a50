// CUDA cross-entropy fused with log-softmax (see kernels/loss.h). One warp per row: each lane keeps
// an online (max, Σexp) over a strided slice (kernels/nn_math.h) plus Σx, merged in a fixed
// butterfly, so lse is deterministic; backward writes softmax − smoothed target in one pass.
// f32 accumulates in f64, as on the CPU. Targets are range-checked on the host first (as the CPU
// does, so the error message is the same); the kernels read them from the device.
#include <vector>

#include "kernels/cuda/common.cuh"
#include "kernels/loss.h"
#include "kernels/nn_math.h"

namespace knot::kernels::cuda {
namespace {

using namespace knot::cuda_detail;
using math::OnlineLse;

template <typename T, typename I>
__global__ void ce_fwd_kernel(const T* __restrict__ x, const I* __restrict__ target, int64_t m, int64_t C,
                              int64_t ignore_index, double eps, T* __restrict__ loss, T* __restrict__ lse) {
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t step = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  const int lane = static_cast<int>(threadIdx.x & 31);
  for (int64_t r = tid >> 5; r < m; r += step) {
    const T* xr = x + r * C;
    OnlineLse<double> st;
    double sx = 0;
    for (int64_t c = lane; c < C; c += 32) {
      const double v = static_cast<double>(xr[c]);
      math::online_lse_add(st, v);
      sx += v;
    }
    st = warp_merge(st);
    sx = warp_sum(sx);
    if (lane == 0) {
      const double l = math::online_lse_result(st);
      lse[r] = static_cast<T>(l);
      const int64_t t = static_cast<int64_t>(target[r]);
      loss[r] = t == ignore_index
                    ? T(0)
                    : static_cast<T>(math::cross_entropy_row<double>(l, static_cast<double>(xr[t]),
                                                                     sx / static_cast<double>(C), eps));
    }
  }
}

template <typename T, typename I>
__global__ void ce_bwd_kernel(const T* __restrict__ x, const I* __restrict__ target, const T* __restrict__ lse,
                              const T* __restrict__ rg, int64_t m, int64_t C, int64_t ignore_index, double eps,
                              T* __restrict__ gx) {
  const double inv_c = 1.0 / static_cast<double>(C);
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < m * C;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = e / C, c = e % C;
    const int64_t t = static_cast<int64_t>(target[r]);
    gx[e] = t == ignore_index ? T(0)
                              : static_cast<T>(static_cast<double>(rg[r]) *
                                               math::cross_entropy_grad<double>(static_cast<double>(x[e]),
                                                                                static_cast<double>(lse[r]), c == t,
                                                                                eps, inv_c));
  }
}

// Range check on the host (same message as the CPU); returns the number of non-ignored rows.
int64_t check_targets(const Tensor& target, int64_t m, int64_t classes, int64_t ignore_index) {
  const std::vector<int64_t> t = dispatch_index(target.dtype(), "cross_entropy", [&](auto tag) {
    using I = decltype(tag);
    const auto v = target.to_vector<I>();
    return std::vector<int64_t>(v.begin(), v.end());
  });
  KNOT_CHECK(static_cast<int64_t>(t.size()) == m, "cross_entropy: {} targets for {} rows", t.size(), m);
  int64_t count = 0;
  for (int64_t r = 0; r < m; ++r) {
    if (t[r] == ignore_index) continue;
    KNOT_CHECK(t[r] >= 0 && t[r] < classes,
               "cross_entropy: target {} at position {} is out of range for {} classes (ignore_index is {})", t[r],
               r, classes, ignore_index);
    ++count;
  }
  return count;
}

}  // namespace

CrossEntropyFwd cross_entropy_fwd(const Tensor& logits, const Tensor& target_in, int64_t classes,
                                  int64_t ignore_index, double eps) {
  const char* op = "cross_entropy";
  const Tensor x = dense(logits), target = dense(target_in);
  const int64_t m = classes > 0 ? x.numel() / classes : 0;
  CrossEntropyFwd out{empty({m}, x.dtype(), x.device()), empty({m}, x.dtype(), x.device()), 0};
  out.count = check_targets(target, m, classes, ignore_index);
  if (m == 0) return out;
  const int dev = x.device().index;
  cudaStream_t stream = stream_for(dev, op);
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    dispatch_index(target.dtype(), op, [&](auto itag) {
      using I = decltype(itag);
      ce_fwd_kernel<T, I><<<grid_for(m * 32, dev), kThreads, 0, stream>>>(
          x.data<T>(), target.data<I>(), m, classes, ignore_index, eps, out.loss.template data<T>(),
          out.lse.template data<T>());
    });
  });
  KNOT_CUDA_LAUNCH_CHECK(op);
  return out;
}

Tensor cross_entropy_bwd(const Tensor& logits, const Tensor& target_in, const Tensor& lse_in, const Tensor& row_grad,
                         int64_t classes, int64_t ignore_index, double eps) {
  const char* op = "cross_entropy backward";
  const Tensor x = dense(logits), target = dense(target_in), lse = dense(lse_in), w = dense(row_grad);
  const int64_t m = classes > 0 ? x.numel() / classes : 0;
  Tensor gx = empty(x.shape(), x.dtype(), x.device());
  if (m == 0 || classes == 0) return gx;
  const int dev = x.device().index;
  cudaStream_t stream = stream_for(dev, op);
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    dispatch_index(target.dtype(), op, [&](auto itag) {
      using I = decltype(itag);
      ce_bwd_kernel<T, I><<<grid_for(m * classes, dev), kThreads, 0, stream>>>(
          x.data<T>(), target.data<I>(), lse.data<T>(), w.data<T>(), m, classes, ignore_index, eps,
          gx.template data<T>());
    });
  });
  KNOT_CUDA_LAUNCH_CHECK(op);
  return gx;
}

}  // namespace knot::kernels::cuda
