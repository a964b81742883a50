// Counter-based random numbers (Philox-4x32-10, Salmon et al., SC'11).
//
// Element i of the c-th draw from a generator seeded with s is a pure function
// philox(counter = {i_lo, i_hi, c_lo, c_hi}, key = {s_lo, s_hi}), so every element can be computed
// independently, in any order, on any device: the same seed gives the same numbers on CPU and GPU
// and for any thread count. Each draw (rand, randn, a dropout mask) advances the generator's
// draw counter by one.
#pragma once

#include <math.h>
#include <cstdint>

#include "core/hd.h"
#include "core/tensor.h"

namespace knot {

struct Philox4 {
  uint32_t v[4];
};

KNOT_HD uint32_t philox_mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  const uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

// Philox-4x32 with 10 rounds.
KNOT_HD Philox4 philox4x32(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, hi1;
    const uint32_t lo0 = philox_mulhilo(0xD2511F53u, c0, &hi0);
    const uint32_t lo1 = philox_mulhilo(0xCD9E8D57u, c2, &hi1);
    const uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {{c0, c1, c2, c3}};
}

// The four 32-bit words for element `i` of draw `draw` under `seed`.
KNOT_HD Philox4 philox_element(uint64_t seed, uint64_t draw, uint64_t i) {
  return philox4x32(static_cast<uint32_t>(i), static_cast<uint32_t>(i >> 32), static_cast<uint32_t>(draw),
                    static_cast<uint32_t>(draw >> 32), static_cast<uint32_t>(seed),
                    static_cast<uint32_t>(seed >> 32));
}

// Uniform in [0, 1): 24 bits for float, 53 bits for double.
KNOT_HD float uniform_f32(const Philox4& r) { return static_cast<float>(r.v[0] >> 8) * (1.0f / 16777216.0f); }
KNOT_HD double uniform_f64(const Philox4& r) {
  const uint64_t bits = (static_cast<uint64_t>(r.v[0]) << 21) ^ (r.v[1] >> 11);
  return static_cast<double>(bits & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
}

// Standard normal by Box–Muller from two uniforms of the same element (u1 in (0, 1]).
KNOT_HD double normal_f64(const Philox4& r) {
  const double u1 = (static_cast<double>(r.v[2]) + 1.0) * (1.0 / 4294967296.0);
  const double u2 = static_cast<double>(r.v[3]) * (1.0 / 4294967296.0);
  return ::sqrt(-2.0 * ::log(u1)) * ::cos(6.283185307179586 * u2);
}

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  void manual_seed(uint64_t seed) { seed_ = seed; draw_ = 0; }
  uint64_t seed() const { return seed_; }
  uint64_t draws() const { return draw_; }
  // Reserves one draw; returns its counter.
  uint64_t next_draw() { return draw_++; }

  // The whole state (seed and draw counter). Activation checkpointing (autograd/checkpoint.h)
  // saves it before a forward and sets it back to replay the same dropout masks when it recomputes
  // that forward in backward, then restores where the generator had got to.
  struct State {
    uint64_t seed = 0;
    uint64_t draw = 0;
  };
  State state() const { return {seed_, draw_}; }
  void set_state(const State& s) { seed_ = s.seed; draw_ = s.draw; }

 private:
  uint64_t seed_;
  uint64_t draw_ = 0;
};

// The process-wide default generator (seed 0 until manual_seed is called).
Generator& default_generator();
void manual_seed(uint64_t seed);

// Data parallelism (dist/, docs/distributed.md): the rows of the global batch this process holds.
// A rank that takes rows [first, first + rows) of a global batch sets them before its forward (and
// keeps them through backward, where recomputed segments draw again); dropout then keys each element
// by its index in the global batch: local element i of a batch-major tensor x gets mask index
// first · (x.numel() / rows) + i, so N ranks drop exactly what one process would. (0, 0), the
// default, is the whole batch (offset 0).
void set_batch_rows(int64_t first, int64_t rows);
// The offset above for x (0 without rows set). x's leading dimensions must be the batch rows (e.g.
// (B, T, D), (B·T, D) or (B, H, T, S)); a tensor whose size is not a multiple of the rows is an error.
uint64_t batch_element_offset(const Tensor& x);
// The same for a batch-major tensor of `numel` elements and shape `shape` (shape only for errors).
uint64_t batch_element_offset(int64_t numel, const Shape& shape);

// U[lo, hi) and N(mean, std) tensors. f32/f64 only.
Tensor rand(const Shape& s, DType dtype = DType::f32, Generator* gen = nullptr, double lo = 0.0, double hi = 1.0);
Tensor randn(const Shape& s, DType dtype = DType::f32, Generator* gen = nullptr, double mean = 0.0, double std = 1.0);
// Uniform integers in [lo, hi).
Tensor randint(int64_t lo, int64_t hi, const Shape& s, DType dtype = DType::i64, Generator* gen = nullptr);

}  // namespace knot
