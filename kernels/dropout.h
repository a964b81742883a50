// Dropout with a counter-based mask (Srivastava et al., JMLR 2014; Philox from core/rng.h).
//   keep_i = uniform(word i mod 4 of philox(seed, draw, i / 4)) >= p        y_i = keep_i ? x_i / (1 - p) : 0
// i is the element's row-major index plus `offset`, so the mask is a pure function of (seed, draw, i):
// the backward regenerates it instead of saving it, and CPU, CUDA and any thread count agree. The
// offset is 0 except in a data-parallel run, where it is the index of this rank's first element in
// the global batch (core/rng.h batch_element_offset), so each rank draws its rows' share of the
// mask one process would draw for the whole batch.
#pragma once

#include <cstdint>

#include "core/hd.h"
#include "core/rng.h"
#include "kernels/dispatch.h"

namespace knot::kernels {

// The per-element decision, shared by the CPU loop and the CUDA kernel. One Philox call gives four
// 32-bit words, so element i uses word i mod 4 of the call for counter i / 4 (a quarter of the
// Philox work of one call per element). The 24-bit float uniform is used for every dtype so that
// f32 and f64 inputs get the same mask (and the GPU needs no double arithmetic).
KNOT_HD bool dropout_keep_word(uint32_t word, float p) {
  return static_cast<float>(word >> 8) * (1.0f / 16777216.0f) >= p;
}
KNOT_HD bool dropout_keep(uint64_t seed, uint64_t draw, uint64_t i, float p) {
  return dropout_keep_word(philox_element(seed, draw, i >> 2).v[i & 3], p);
}

#define KNOT_DROPOUT_KERNELS(X)                                                                                 \
  /* x: any shape (float) -> y: same shape, contiguous; p in [0, 1) */                                          \
  X(Tensor, dropout_fwd, (const Tensor& x, double p, uint64_t seed, uint64_t draw, uint64_t offset))            \
  /* g: the output gradient, x's shape -> gx = g * keep / (1 - p) with the same mask */                         \
  X(Tensor, dropout_bwd, (const Tensor& g, double p, uint64_t seed, uint64_t draw, uint64_t offset))

namespace cpu { KNOT_DROPOUT_KERNELS(KNOT_DECLARE_KERNEL) }
namespace cuda { KNOT_DROPOUT_KERNELS(KNOT_DECLARE_KERNEL) }

inline Tensor dropout_fwd(const Tensor& x, double p, uint64_t seed, uint64_t draw, uint64_t offset = 0) {
  return KNOT_DISPATCH(x, dropout_fwd(x, p, seed, draw, offset));
}
inline Tensor dropout_bwd(const Tensor& g, double p, uint64_t seed, uint64_t draw, uint64_t offset = 0) {
  return KNOT_DISPATCH(g, dropout_bwd(g, p, seed, draw, offset));
}

}  // namespace knot::kernels
