// Philox-4x32-10 (core/rng.h) for 16 consecutive counters at once with AVX-512, for the CPU kernels
// that draw many numbers (dropout masks). Bit-identical to philox_element; only where __AVX512F__.
#pragma once

#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>

namespace knot::kernels::cpu {

// Philox-4x32-10 for the 16 consecutive counters g0 .. g0+15 at once (core/rng.h computes one):
// lane j of out[w] is word w of philox_element(seed, draw, g0 + j), bit for bit. The 32x32 -> 64-bit
// products come from VPMULUDQ on the even and the odd lanes; the low halves from VPMULLD.
inline void philox16(uint64_t seed, uint64_t draw, uint64_t g0, uint32_t out[4][16]) {
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  // counter (lo, hi) = g0 + lane, with the carry into the high word
  const __m512i lo = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(g0))), lane);
  const __mmask16 carry = _mm512_cmplt_epu32_mask(lo, lane);
  __m512i c0 = lo;
  __m512i c1 = _mm512_mask_add_epi32(_mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(g0 >> 32))), carry,
                                     _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(g0 >> 32))),
                                     _mm512_set1_epi32(1));
  __m512i c2 = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(draw)));
  __m512i c3 = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(draw >> 32)));
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  const __m512i m0 = _mm512_set1_epi32(static_cast<int>(0xD2511F53u)), m1 = _mm512_set1_epi32(static_cast<int>(0xCD9E8D57u));
  auto mulhi = [](__m512i a, __m512i m) {  // high 32 bits of a * m per lane
    const __m512i even = _mm512_srli_epi64(_mm512_mul_epu32(a, m), 32);
    const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
    return _mm512_mask_blend_epi32(0xAAAA, even, odd);
  };
  for (int r = 0; r < 10; ++r) {
    const __m512i hi0 = mulhi(c0, m0), lo0 = _mm512_mullo_epi32(c0, m0);
    const __m512i hi1 = mulhi(c2, m1), lo1 = _mm512_mullo_epi32(c2, m1);
    const __m512i n0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32(static_cast<int>(k0)));
    const __m512i n2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32(static_cast<int>(k1)));
    c0 = n0, c1 = lo1, c2 = n2, c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  _mm512_storeu_si512(out[0], c0);
  _mm512_storeu_si512(out[1], c1);
  _mm512_storeu_si512(out[2], c2);
  _mm512_storeu_si512(out[3], c3);
}

}  // namespace knot::kernels::cpu

#endif
