// Core micro-benchmarks: GEMM at Transformer shapes (GFLOP/s and fraction of the measured FMA
// peak), elementwise ops and softmax (GB/s). FLOPs and bytes per iteration are printed beside
// the time as counters.
//   GEMM (M×K)·(K×N): 2·M·N·K FLOP.   add: 3·4·n bytes (two reads, one write, f32).
//   exp/gelu: 2·4·n bytes.            softmax rows×cols: 2·4·rows·cols bytes (one read, one write).
#include <benchmark/benchmark.h>

#include "bench/peak.h"
#include "kernels/cpu/loops.h"
#include "ops/ops.h"

using namespace knot;

namespace {

void set_gemm_counters(benchmark::State& st, double flops) {
  const double peak = bench::peak_gflops_f32(num_threads());
  st.counters["FLOP"] = flops;
  st.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["peak_GFLOP/s"] = peak;
  // fraction of peak, computed from the rate above by the reporter would need post-processing; do it here:
  st.counters["frac_peak"] = benchmark::Counter(flops * 1e-9 / peak, benchmark::Counter::kIsIterationInvariantRate);
}

// x (M, K) · Wᵀ with W (N, K): the Linear-layer GEMM (weight stored (out, in), transposed by flag).
void BM_Matmul_Linear(benchmark::State& st) {
  const int64_t M = st.range(0), K = st.range(1), N = st.range(2);
  Tensor x = rand({M, K}), w = rand({N, K});
  for (auto _ : st) benchmark::DoNotOptimize(matmul(x, w, false, true).raw_data());
  set_gemm_counters(st, 2.0 * M * N * K);
}
// tokens = 32×32 = 1024 (a kanformer batch), d = 512, FFN 2048; and the KAN widths 128/512.
BENCHMARK(BM_Matmul_Linear)
    ->Args({1024, 512, 512})
    ->Args({1024, 512, 2048})
    ->Args({1024, 2048, 512})
    ->Args({1024, 128, 128})
    ->Args({4096, 256, 256})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Attention scores: (B·H, T, D) · (B·H, S, D)ᵀ.
void BM_Matmul_AttentionScores(benchmark::State& st) {
  const int64_t BH = st.range(0), T = st.range(1), D = st.range(2);
  Tensor q = rand({BH, T, D}), k = rand({BH, T, D});
  for (auto _ : st) benchmark::DoNotOptimize(matmul(q, k, false, true).raw_data());
  set_gemm_counters(st, 2.0 * BH * T * T * D);
}
BENCHMARK(BM_Matmul_AttentionScores)->Args({256, 32, 64})->Args({64, 128, 64})->Args({16, 512, 64})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

// Linear forward + backward (dx = dy·W, dW = dyᵀ·x): 3 GEMMs.
void BM_Linear_FwdBwd(benchmark::State& st) {
  const int64_t M = st.range(0), K = st.range(1), N = st.range(2);
  Tensor x = rand({M, K}), w = rand({N, K});
  x.requires_grad_();
  w.requires_grad_();
  for (auto _ : st) {
    x.zero_grad();
    w.zero_grad();
    sum(matmul(x, w, false, true)).backward();
    benchmark::DoNotOptimize(w.grad().raw_data());
  }
  set_gemm_counters(st, 3 * 2.0 * M * N * K);
}
BENCHMARK(BM_Linear_FwdBwd)->Args({1024, 512, 512})->Args({4096, 256, 256})->Unit(benchmark::kMillisecond)->UseRealTime();

void set_bytes(benchmark::State& st, double bytes) {
  st.counters["bytes"] = bytes;
  st.counters["GB/s"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Add(benchmark::State& st) {
  const int64_t n = st.range(0);
  Tensor a = rand({n}), b = rand({n});
  for (auto _ : st) benchmark::DoNotOptimize(add(a, b).raw_data());
  set_bytes(st, 3.0 * 4 * n);
}
BENCHMARK(BM_Add)->Arg(1 << 16)->Arg(1 << 22)->UseRealTime();

void BM_AddBroadcastRow(benchmark::State& st) {  // (rows, 512) + (512): the bias add
  const int64_t rows = st.range(0);
  Tensor a = rand({rows, 512}), b = rand({512});
  for (auto _ : st) benchmark::DoNotOptimize(add(a, b).raw_data());
  set_bytes(st, 2.0 * 4 * rows * 512);
}
BENCHMARK(BM_AddBroadcastRow)->Arg(8192)->UseRealTime();

void BM_Exp(benchmark::State& st) {
  const int64_t n = st.range(0);
  Tensor a = rand({n});
  for (auto _ : st) benchmark::DoNotOptimize(exp(a).raw_data());
  set_bytes(st, 2.0 * 4 * n);
}
BENCHMARK(BM_Exp)->Arg(1 << 22)->UseRealTime();

void BM_Gelu(benchmark::State& st) {
  const int64_t n = st.range(0);
  Tensor a = rand({n});
  for (auto _ : st) benchmark::DoNotOptimize(gelu(a).raw_data());
  set_bytes(st, 2.0 * 4 * n);
}
BENCHMARK(BM_Gelu)->Arg(1 << 22)->UseRealTime();

void BM_Softmax(benchmark::State& st) {
  const int64_t rows = st.range(0), cols = st.range(1);
  Tensor a = rand({rows, cols});
  for (auto _ : st) benchmark::DoNotOptimize(softmax(a, -1).raw_data());
  set_bytes(st, 2.0 * 4 * rows * cols);
}
BENCHMARK(BM_Softmax)->Args({8192, 128})->Args({2048, 512})->Args({1024, 5000})->UseRealTime();

void BM_PeakFMA(benchmark::State& st) {
  double g = 0;
  for (auto _ : st) g = bench::peak_gflops_f32(static_cast<int>(st.range(0)));
  st.counters["GFLOP/s"] = g;
}
BENCHMARK(BM_PeakFMA)->Arg(1)->Arg(2)->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
