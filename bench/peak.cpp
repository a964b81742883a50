// Peak FMA throughput: enough independent FMA chains on 32-byte float vectors to cover the FMA
// latency × units, no memory traffic. 2 FLOP per lane per FMA.
#include "bench/peak.h"

#include <omp.h>

#include <chrono>
#include <map>

namespace knot::bench {
namespace {

typedef float v8f __attribute__((vector_size(32)));

double fma_loop_gflops() {
  constexpr int kChains = 12;
  constexpr long kIters = 20'000'000;
  v8f acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = v8f{} + 0.001f * static_cast<float>(c);
  const v8f a = v8f{} + 0.9999999f, b = v8f{} + 1e-7f;
  const auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < kIters; ++i)
    for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * a + b;  // contracted to FMA with -march=native
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  float sink = 0;
  for (int c = 0; c < kChains; ++c) sink += acc[c][0];
  volatile float keep = sink;
  (void)keep;
  return 2.0 * 8 * kChains * static_cast<double>(kIters) / s * 1e-9;
}

}  // namespace

double peak_gflops_f32(int threads) {
  static std::map<int, double> cache;
  auto it = cache.find(threads);
  if (it != cache.end()) return it->second;
  double total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
  total += fma_loop_gflops();
  cache[threads] = total;
  return total;
}

}  // namespace knot::bench
