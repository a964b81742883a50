// CPU optimizer updates (see kernels/optim.h).
#include "core/dispatch.h"
#include "kernels/cpu/loops.h"
#include "kernels/optim.h"

namespace knot::kernels::cpu {

void adam_step(const Tensor& p, const Tensor& g_in, const Tensor& m, const Tensor& v, const AdamHyper& h) {
  KNOT_CHECK(p.is_contiguous() && m.is_contiguous() && v.is_contiguous(), "adam_step: parameter and state must be contiguous");
  const Tensor g = dense(g_in);
  dispatch_float(p.dtype(), "adam_step", [&](auto tag) {
    using T = decltype(tag);
    // __restrict and a loop per `decoupled` value let the compiler vectorise the update (IEEE
    // division and square root: the same bits as the scalar loop, and as the CUDA kernel).
    T* __restrict pp = p.data<T>();
    const T* __restrict pg = g.data<T>();
    T* __restrict pm = m.data<T>();
    T* __restrict pv = v.data<T>();
    const T bc1 = static_cast<T>(1.0 - std::pow(h.beta1, static_cast<double>(h.step)));
    const T bc2 = static_cast<T>(1.0 - std::pow(h.beta2, static_cast<double>(h.step)));
    const T lr = static_cast<T>(h.lr), b1 = static_cast<T>(h.beta1), b2 = static_cast<T>(h.beta2);
    const T eps = static_cast<T>(h.eps), wd = static_cast<T>(h.weight_decay);
    const bool decoupled = h.decoupled;
    parallel_for(p.numel(), kParallelGrain, [=](int64_t i0, int64_t i1) {
      if (decoupled) {
        for (int64_t i = i0; i < i1; ++i) adam_update(pp[i], pg[i], pm[i], pv[i], lr, b1, b2, eps, wd, true, bc1, bc2);
      } else {
        for (int64_t i = i0; i < i1; ++i) adam_update(pp[i], pg[i], pm[i], pv[i], lr, b1, b2, eps, wd, false, bc1, bc2);
      }
    });
  });
}

void sgd_step(const Tensor& p, const Tensor& g_in, const Tensor& buf, double lr, double momentum, double wd,
              bool nesterov) {
  KNOT_CHECK(p.is_contiguous(), "sgd_step: parameter must be contiguous");
  const Tensor g = dense(g_in);
  dispatch_float(p.dtype(), "sgd_step", [&](auto tag) {
    using T = decltype(tag);
    T* pp = p.data<T>();
    const T* pg = g.data<T>();
    T* pb = buf.defined() ? buf.data<T>() : nullptr;
    const T tlr = static_cast<T>(lr), mu = static_cast<T>(momentum), twd = static_cast<T>(wd);
    parallel_for(p.numel(), kParallelGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        T d = pg[i] + twd * pp[i];
        if (pb) {
          pb[i] = mu * pb[i] + d;
          d = nesterov ? d + mu * pb[i] : pb[i];
        }
        pp[i] -= tlr * d;
      }
    });
  });
}

}  // namespace knot::kernels::cpu
