// CUDA optimizer updates (see kernels/optim.h): one fused pass per parameter tensor, reading the
// gradient and state once and writing parameter and state once. The AdamW rule is adam_update,
// the KNOT_HD function the CPU loop runs; SGD is written out as on the CPU.
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/optim.h"

namespace knot::kernels::cuda {
namespace {

using namespace knot::cuda_detail;

template <typename T>
__global__ void adam_kernel(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m, T* __restrict__ v,
                            int64_t n, T lr, T b1, T b2, T eps, T wd, bool decoupled, T bc1, T bc2) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    T pi = p[i], mi = m[i], vi = v[i];
    adam_update(pi, g[i], mi, vi, lr, b1, b2, eps, wd, decoupled, bc1, bc2);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
  }
}

template <typename T>
__global__ void sgd_kernel(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ buf, int64_t n, T lr, T mu,
                           T wd, bool nesterov) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    T d = g[i] + wd * p[i];
    if (buf) {
      const T b = mu * buf[i] + d;
      buf[i] = b;
      d = nesterov ? d + mu * b : b;
    }
    p[i] -= lr * d;
  }
}

void check_state(const char* op, const Tensor& p, const Tensor& t, const char* what) {
  KNOT_CHECK(t.device() == p.device(), "{}: {} is on {} but the parameter is on {}", op, what, t.device().str(),
             p.device().str());
  KNOT_CHECK(t.dtype() == p.dtype() && t.numel() == p.numel(), "{}: {} {} does not match the parameter {}", op, what,
             t.desc(), p.desc());
}

}  // namespace

void adam_step(const Tensor& p, const Tensor& g_in, const Tensor& m, const Tensor& v, const AdamHyper& h) {
  KNOT_CHECK(p.is_contiguous() && m.is_contiguous() && v.is_contiguous(), "adam_step: parameter and state must be contiguous");
  const Tensor g = dense(g_in);
  check_state("adam_step", p, g, "gradient");
  check_state("adam_step", p, m, "first moment");
  check_state("adam_step", p, v, "second moment");
  const int64_t n = p.numel();
  if (n == 0) return;
  const int dev = p.device().index;
  cudaStream_t stream = stream_for(dev, "adam_step");
  dispatch_float(p.dtype(), "adam_step", [&](auto tag) {
    using T = decltype(tag);
    const T bc1 = static_cast<T>(1.0 - std::pow(h.beta1, static_cast<double>(h.step)));
    const T bc2 = static_cast<T>(1.0 - std::pow(h.beta2, static_cast<double>(h.step)));
    adam_kernel<T><<<grid_for(n, dev), kThreads, 0, stream>>>(
        p.data<T>(), g.data<T>(), m.data<T>(), v.data<T>(), n, static_cast<T>(h.lr), static_cast<T>(h.beta1),
        static_cast<T>(h.beta2), static_cast<T>(h.eps), static_cast<T>(h.weight_decay), h.decoupled, bc1, bc2);
  });
  KNOT_CUDA_LAUNCH_CHECK("adam_step");
}

void sgd_step(const Tensor& p, const Tensor& g_in, const Tensor& buf, double lr, double momentum, double wd,
              bool nesterov) {
  KNOT_CHECK(p.is_contiguous(), "sgd_step: parameter must be contiguous");
  const Tensor g = dense(g_in);
  check_state("sgd_step", p, g, "gradient");
  if (buf.defined()) {
    KNOT_CHECK(buf.is_contiguous(), "sgd_step: momentum buffer must be contiguous");
    check_state("sgd_step", p, buf, "momentum buffer");
  }
  const int64_t n = p.numel();
  if (n == 0) return;
  const int dev = p.device().index;
  cudaStream_t stream = stream_for(dev, "sgd_step");
  dispatch_float(p.dtype(), "sgd_step", [&](auto tag) {
    using T = decltype(tag);
    sgd_kernel<T><<<grid_for(n, dev), kThreads, 0, stream>>>(p.data<T>(), g.data<T>(),
                                                             buf.defined() ? buf.data<T>() : nullptr, n,
                                                             static_cast<T>(lr), static_cast<T>(momentum),
                                                             static_cast<T>(wd), nesterov);
  });
  KNOT_CUDA_LAUNCH_CHECK("sgd_step");
}

}  // namespace knot::kernels::cuda
