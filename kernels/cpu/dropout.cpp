// CPU dropout (see kernels/dropout.h). Forward and backward are the same masked scale; only the
// tensor they scale differs.
#include "kernels/dropout.h"

#include "core/dispatch.h"
#include "kernels/cpu/loops.h"
#include "kernels/elementwise.h"

namespace knot::kernels::cpu {
namespace {

Tensor masked_scale(const Tensor& x_in, double p, uint64_t seed, uint64_t draw) {
  const Tensor x = dense(x_in);  // element i must be the row-major index, whatever the layout
  Tensor y = empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), "dropout", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    const T scale = static_cast<T>(1.0 / (1.0 - p));
    const float pf = static_cast<float>(p);
    parallel_for(x.numel(), kParallelGrain, [&](int64_t i0, int64_t i1) {
      int64_t i = i0;
      for (; i < i1 && (i & 3); ++i)  // up to the first element of a Philox group
        py[i] = dropout_keep(seed, draw, static_cast<uint64_t>(i), pf) ? px[i] * scale : T(0);
      for (; i + 4 <= i1; i += 4) {  // one Philox call per four elements
        const Philox4 r = philox_element(seed, draw, static_cast<uint64_t>(i) >> 2);
        for (int w = 0; w < 4; ++w) py[i + w] = dropout_keep_word(r.v[w], pf) ? px[i + w] * scale : T(0);
      }
      for (; i < i1; ++i)
        py[i] = dropout_keep(seed, draw, static_cast<uint64_t>(i), pf) ? px[i] * scale : T(0);
    });
  });
  return y;
}

}  // namespace

Tensor dropout_fwd(const Tensor& x, double p, uint64_t seed, uint64_t draw) { return masked_scale(x, p, seed, draw); }
Tensor dropout_bwd(const Tensor& g, double p, uint64_t seed, uint64_t draw) { return masked_scale(g, p, seed, draw); }

}  // namespace knot::kernels::cpu
