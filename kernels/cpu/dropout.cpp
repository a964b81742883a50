// CPU dropout (see kernels/dropout.h). Forward and backward are the same masked scale; only the
// tensor they scale differs. With AVX-512 the Philox words come 16 calls (64 elements) at a time.
#include "kernels/cpu/gcc12_avx512.h"  // first: AVX-512 intrinsics (philox16.h)
#include "kernels/dropout.h"

#include "kernels/cpu/philox16.h"

#include "core/dispatch.h"
#include "kernels/cpu/loops.h"
#include "kernels/elementwise.h"

namespace knot::kernels::cpu {
namespace {


// Element i of x uses mask index off + i (kernels/dropout.h).
Tensor masked_scale(const Tensor& x_in, double p, uint64_t seed, uint64_t draw, uint64_t off) {
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
#if defined(__AVX512F__) && defined(__BMI2__)
      for (; i < i1 && ((off + i) & 63); ++i)  // up to the first element of a 64-element (16-call) block
        py[i] = dropout_keep(seed, draw, off + i, pf) ? px[i] * scale : T(0);
      alignas(64) uint32_t w[4][16];
      const __m512 pv = _mm512_set1_ps(pf), unit = _mm512_set1_ps(1.0f / 16777216.0f);
      for (; i + 64 <= i1; i += 64) {  // element i + e uses word e mod 4 of call (i + e) / 4
        philox16(seed, draw, (off + i) >> 2, w);
        // keep bit e of the block: word k's 16 decisions (dropout_keep_word, vectorised) go to bits
        // k, k+4, k+8, ... (PDEP), then the scale is applied under that mask, 16 or 8 lanes at a time.
        uint64_t keep = 0;
        for (int k = 0; k < 4; ++k) {
          const __m512 u = _mm512_mul_ps(
              _mm512_cvtepi32_ps(_mm512_srli_epi32(_mm512_load_si512(w[k]), 8)), unit);
          keep |= _pdep_u64(_mm512_cmp_ps_mask(u, pv, _CMP_GE_OQ), 0x1111111111111111ull << k);
        }
        if constexpr (std::is_same_v<T, float>) {
          const __m512 sv = _mm512_set1_ps(scale);
          for (int c = 0; c < 4; ++c)
            _mm512_storeu_ps(py + i + 16 * c, _mm512_maskz_mul_ps(static_cast<__mmask16>(keep >> (16 * c)),
                                                                  _mm512_loadu_ps(px + i + 16 * c), sv));
        } else {
          const __m512d sv = _mm512_set1_pd(scale);
          for (int c = 0; c < 8; ++c)
            _mm512_storeu_pd(py + i + 8 * c, _mm512_maskz_mul_pd(static_cast<__mmask8>(keep >> (8 * c)),
                                                                 _mm512_loadu_pd(px + i + 8 * c), sv));
        }
      }
#endif
      for (; i < i1 && ((off + i) & 3); ++i)  // up to the first element of a Philox group
        py[i] = dropout_keep(seed, draw, off + i, pf) ? px[i] * scale : T(0);
      for (; i + 4 <= i1; i += 4) {  // one Philox call per four elements
        const Philox4 r = philox_element(seed, draw, (off + i) >> 2);
        for (int w = 0; w < 4; ++w) py[i + w] = dropout_keep_word(r.v[w], pf) ? px[i + w] * scale : T(0);
      }
      for (; i < i1; ++i)
        py[i] = dropout_keep(seed, draw, off + i, pf) ? px[i] * scale : T(0);
    });
  });
  return y;
}

}  // namespace

Tensor dropout_fwd(const Tensor& x, double p, uint64_t seed, uint64_t draw, uint64_t offset) {
  return masked_scale(x, p, seed, draw, offset);
}
Tensor dropout_bwd(const Tensor& g, double p, uint64_t seed, uint64_t draw, uint64_t offset) {
  return masked_scale(g, p, seed, draw, offset);
}

}  // namespace knot::kernels::cpu
