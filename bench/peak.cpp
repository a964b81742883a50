// Peak FMA throughput: enough independent FMA chains on float vectors to cover the FMA latency ×
// units, no memory traffic. 2 FLOP per lane per FMA. Measured with 8-wide (AVX2) vectors and, where
// the compiler targets AVX-512, with 16-wide ones too; the peak is the larger. A machine with full-
// width 512-bit FMA units does twice the work per instruction there; on this project's AMD EPYC
// (double-pumped AVX-512) both loops measure the same, about 220 GFLOP/s on 2 cores.
#include "bench/peak.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <map>

namespace knot::bench {
namespace {

typedef float v8f __attribute__((vector_size(32)));
typedef float v16f __attribute__((vector_size(64)));

// vf: a vector of W floats.
template <typename vf, int W>
double fma_loop_gflops() {
  constexpr int kChains = 12;
  constexpr long kIters = 20'000'000 * 8 / W;
  vf acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = vf{} + 0.001f * static_cast<float>(c);
  const vf a = vf{} + 0.9999999f, b = vf{} + 1e-7f;
  const auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < kIters; ++i)
    for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * a + b;  // contracted to FMA with -march=native
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  float sink = 0;
  for (int c = 0; c < kChains; ++c) sink += acc[c][0];
  volatile float keep = sink;
  (void)keep;
  return 2.0 * W * kChains * static_cast<double>(kIters) / s * 1e-9;
}

// The best of three rounds: the peak is a property of the machine, so a round that another process
// interrupted (these machines are shared) must not lower it — a low peak is how frac_peak went
// above 1 on a loaded machine.
double fma_peak_gflops() {
  double best = 0;
  for (int round = 0; round < 3; ++round) {
    best = std::max(best, fma_loop_gflops<v8f, 8>());
#if defined(__AVX512F__)
    best = std::max(best, fma_loop_gflops<v16f, 16>());
#endif
  }
  return best;
}

}  // namespace

double peak_gflops_f32(int threads) {
  static std::map<int, double> cache;
  auto it = cache.find(threads);
  if (it != cache.end()) return it->second;
  double total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
  total += fma_peak_gflops();
  cache[threads] = total;
  return total;
}

}  // namespace knot::bench
