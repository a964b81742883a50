// KANLinear::update_grid at model scale: the time and peak memory of one grid update (new knots from
// the batch, then the least-squares refit of spline_weight; nn/kan_linear.cpp explains the method).
//   KANLinear_update_grid/in:<in>/out:<out>/N:<N>   f32 layer, grid 5, order 3, x ~ U(−2, 2)
// The 128 → 5000 case is the seed KAN kanformer's output head (d = 128, 5,000-token vocabulary).
// Counters:
//   x_forward         update time / the time of the layer's forward pass on the same x (no graph),
//                     both timed in the same iterations
//   rss_peak_MiB      peak resident-set growth during the first update in the process (bench/rss.h),
//                     after the heap's free pages are handed back (cpu_release_cached_memory), so it
//                     counts everything update_grid touches: f64 copies, Eigen work, the new weight
//   weights_MiB       spline_weight's own size, for scale
//   direct_refit_MiB  what the direct refit (efficient-kan's, and knot's until 2026-12-03) holds at
//                     once: the layer's spline part u (N, in, out) and two bases (N, in, G+k) in f64,
//                     8·N·in·(out + 2·(G+k)) bytes — computed, not run
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <chrono>
#include <map>
#include <string>

#include "autograd/grad_mode.h"
#include "bench/rss.h"
#include "core/allocator.h"
#include "core/rng.h"
#include "nn/kan_linear.h"
#include "ops/ops.h"

using namespace knot;
using Clock = std::chrono::steady_clock;

namespace {

void BM_KanUpdateGrid(benchmark::State& st) {
  const int64_t in = st.range(0), out = st.range(1), N = st.range(2);
  nn::KANLinearOptions o;  // efficient-kan's defaults: G = 5, k = 3, f32
  Generator gen(1);
  nn::KANLinear layer(in, out, o, &gen);
  const Tensor x = rand({N, in}, DType::f32, &gen, -2.0, 2.0);
  static std::map<std::string, double> first_peak;  // the first update in the process
  const std::string key = fmt::format("{}/{}/{}", in, out, N);
  double t_update = 0, t_forward = 0;
  for (auto _ : st) {
    st.PauseTiming();  // the layer's forward on the same x, for scale (x_forward)
    {
      NoGradGuard ng;
      const auto f0 = Clock::now();
      benchmark::DoNotOptimize(layer.forward(x).raw_data());
      t_forward += std::chrono::duration<double>(Clock::now() - f0).count();
    }
    st.ResumeTiming();
    const auto u0 = Clock::now();
    if (!first_peak.count(key)) cpu_release_cached_memory();  // freed heap pages (the layer's init) out of the RSS
    const bench::RssWindow rss;
    layer.update_grid(x, 0.01);
    t_update += std::chrono::duration<double>(Clock::now() - u0).count();
    if (!first_peak.count(key)) {
      first_peak[key] = rss.peak_growth();
      st.counters["hwm_reset"] = rss.reset ? 1 : 0;
    }
  }
  const double nb = static_cast<double>(o.grid_size + o.spline_order);
  st.counters["x_forward"] = t_update / t_forward;
  st.counters["rss_peak_MiB"] = first_peak[key] / (1 << 20);
  st.counters["weights_MiB"] = static_cast<double>(layer.spline_weight.numel()) * 4.0 / (1 << 20);
  st.counters["direct_refit_MiB"] = 8.0 * N * in * (static_cast<double>(out) + 2 * nb) / (1 << 20);
}
BENCHMARK(BM_KanUpdateGrid)
    ->ArgNames({"in", "out", "N"})
    ->Args({128, 5000, 1000})
    ->Args({64, 64, 1000})
    ->Args({128, 512, 4096})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
