// Model-level benchmarks: one training step (forward + backward + AdamW) of the seed-sized
// kanformer configs at batch 32 × 32 tokens and of the Electra-small configs at 8 × 128, with
// tokens/s and peak host memory; and fused vs composite attention over sequence lengths.
//   tokens per step: kanformer B·(S + T) (source and target), Electra B·T.
//   attention FLOP: 4·B·H·T·S·D forward (QKᵀ and PV), 2.5× that for forward + backward.
// The kanformer step is the knot side of bench/compare_pytorch_train.py, so it reports what that
// script compares: 1 untimed warm-up step, then 4 timed steps; step_median_s and tokens/s from their
// median; FLOP = the training step's GEMM FLOP (3 × forward; forward: 2·N·in·out per Linear,
// 2·N·in·out·(G+k+1) per dense-path B-spline KANLinear, 2·N·in·out·(k+2) on the local path, N = B·L
// rows through every projection, plus 4·B·T·S·qk per attention module); memory: peak_MiB (allocator
// high-water mark over the steps minus the live bytes before them, AdamW state excluded),
// opt_state_MiB (AdamW's moments), rss_peak_MiB (peak resident-set growth from before the optimizer
// is built to the end of the steps: the RSS high-water mark is reset through /proc/self/clear_refs,
// then VmHWM − VmRSS; hwm_reset = 0 if the reset failed and the number may read low).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include "bench/rss.h"
#include "core/allocator.h"
#include "kernels/linalg.h"
#include "models/config.h"
#include "models/electra.h"
#include "models/encoder_decoder.h"
#include "models/factory.h"
#include "nn/attention.h"
#include "nn/kan_linear.h"
#include "nn/linear.h"
#include "ops/attention.h"
#include "ops/ops.h"
#include "optim/optimizer.h"

using namespace knot;
using knot::bench::RssWindow;

namespace {

std::shared_ptr<nn::Module> load_model(const std::string& path) {
  manual_seed(0);
  return models::build_model(models::load_json_file(path));
}

void set_step_counters(benchmark::State& st, double tokens, size_t peak) {
  st.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["peak_MiB"] = static_cast<double>(peak) / (1 << 20);
}

// Training-step GEMM FLOP of an encoder-decoder at batch B, source and target length L (see the
// file comment): every projection sees N = B·L rows.
double kanformer_train_flops(const nn::Module& m, int64_t B, int64_t L) {
  const double N = static_cast<double>(B * L);
  double fwd = 0;
  for (const auto& [name, mod] : m.named_modules()) {
    if (const auto* lin = dynamic_cast<const nn::Linear*>(mod)) {
      fwd += 2 * N * lin->in_features() * lin->out_features();
    } else if (const auto* kan = dynamic_cast<const nn::KANLinear*>(mod)) {
      const auto& o = kan->options();
      const int64_t nb = o.grid_size + o.spline_order;
      const bool dense = kernels::resolve_spline_path(o.path, nb) == kernels::SplinePath::dense;
      fwd += 2 * N * kan->in_features() * kan->out_features() * (dense ? nb + 1 : o.spline_order + 2);
    } else if (const auto* mha = dynamic_cast<const nn::MultiHeadAttention*>(mod)) {
      fwd += 4.0 * B * L * L * mha->config().query_key_dim;
    }
  }
  return 3 * fwd;
}

// How a kanformer step runs: the GEMM precision (kernels/linalg.h) and the memory savers.
struct StepVariant {
  std::string config;
  MatmulPrecision precision = MatmulPrecision::highest;
  // AdamW inside backward (optim/optimizer.h: no stored gradients) and per-block activation
  // checkpointing (model key activation_checkpointing, autograd/checkpoint.h)
  bool low_memory = false;
};

// configs/kanformer-{mlp,kan}.json, batch 32, source and target length 32; 1 warm-up + 4 timed steps.
void BM_TrainStep_Kanformer(benchmark::State& st, const StepVariant& variant) {
  const MatmulPrecision saved_precision = matmul_precision();
  set_matmul_precision(variant.precision);
  models::Json cfg = models::load_json_file(variant.config);
  if (variant.low_memory) cfg["activation_checkpointing"] = true;
  manual_seed(0);
  auto model = models::build_model(cfg);
  auto& m = dynamic_cast<models::EncoderDecoderTransformer&>(*model);
  const int64_t B = 32, L = 32, V = m.config().vocab_src_size;
  Generator g(1);
  const Tensor src = randint(4, V, {B, L}, DType::i64, &g), tgt = randint(4, V, {B, L + 1}, DType::i64, &g);
  const Tensor tgt_in = tgt.slice(1, 0, L), tgt_out = tgt.slice(1, 1, L + 1);
  const RssWindow rss;
  const size_t live0 = cpu_live_bytes();
  optim::Adam opt(optim::decay_groups(m, 1e-4), 1e-4);
  opt.set_step_in_backward(variant.low_memory);
  const size_t base = cpu_live_bytes();
  cpu_reset_peak();
  auto step = [&] {
    if (variant.low_memory) opt.begin_step_in_backward();
    else opt.zero_grad();
    // The logits live only inside the loss's graph (as in a training loop that keeps just the
    // loss), so backward frees them once the cross-entropy's gradient is taken; the PyTorch side
    // drops its logits the same way.
    const Tensor loss = cross_entropy(m.forward(src, tgt_in).reshape({-1, m.config().vocab_tgt_size}),
                                      tgt_out.reshape({-1}), m.config().pad_tgt_idx, 0.1);
    loss.backward();
    if (!variant.low_memory) opt.step();
  };
  step();  // warm-up
  std::vector<double> times;
  for (auto _ : st) {
    const auto t0 = std::chrono::steady_clock::now();
    step();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  const double median = times.size() % 2 ? times[times.size() / 2]
                                          : 0.5 * (times[times.size() / 2 - 1] + times[times.size() / 2]);
  const double tokens = static_cast<double>(B * 2 * L), flops = kanformer_train_flops(m, B, L);
  st.counters["tokens/s"] = tokens / median;
  st.counters["step_median_s"] = median;
  st.counters["peak_MiB"] = static_cast<double>(cpu_peak_bytes() - base) / (1 << 20);
  st.counters["opt_state_MiB"] = static_cast<double>(base - live0) / (1 << 20);
  st.counters["rss_peak_MiB"] = rss.peak_growth() / (1 << 20);
  st.counters["hwm_reset"] = rss.reset ? 1 : 0;
  st.counters["FLOP"] = flops;
  st.counters["GFLOP/s"] = flops / median * 1e-9;
  st.counters["params_M"] = static_cast<double>(m.num_parameters()) * 1e-6;
  set_matmul_precision(saved_precision);
}
// mlp, kan: f32, AdamW after backward (what compare_pytorch_train.py's PyTorch step does);
// *_bf16: bfloat16 GEMMs with f32 sums; *_lowmem: AdamW inside backward + activation checkpointing.
const std::string kMlp = "configs/kanformer-mlp.json", kKan = "configs/kanformer-kan.json";
BENCHMARK_CAPTURE(BM_TrainStep_Kanformer, mlp, StepVariant{kMlp})
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(4);
BENCHMARK_CAPTURE(BM_TrainStep_Kanformer, kan, StepVariant{kKan})
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(4);
BENCHMARK_CAPTURE(BM_TrainStep_Kanformer, mlp_bf16, StepVariant{kMlp, MatmulPrecision::bf16})
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(4);
BENCHMARK_CAPTURE(BM_TrainStep_Kanformer, kan_bf16, StepVariant{kKan, MatmulPrecision::bf16})
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(4);
BENCHMARK_CAPTURE(BM_TrainStep_Kanformer, mlp_lowmem, StepVariant{kMlp, MatmulPrecision::highest, true})
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(4);
BENCHMARK_CAPTURE(BM_TrainStep_Kanformer, kan_lowmem, StepVariant{kKan, MatmulPrecision::highest, true})
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(4);

// configs/electra-small-{mlp,kan}.json, batch 8 × 128: generator MLM loss + 50 × discriminator
// loss on random labels (the shape of the ELECTRA objective, without the sampling).
void BM_TrainStep_Electra(benchmark::State& st, const std::string& config) {
  auto model = load_model(config);
  auto& m = dynamic_cast<models::Electra&>(*model);
  const int64_t B = 8, T = 128, V = m.config().vocab_size;
  Generator g(2);
  const Tensor ids = randint(5, V, {B, T}, DType::i64, &g), labels = randint(0, 2, {B, T}, DType::i64, &g);
  optim::Adam opt(optim::decay_groups(m, 0.01), 1e-4);
  const size_t base = cpu_live_bytes();
  cpu_reset_peak();
  for (auto _ : st) {
    opt.zero_grad();
    const Tensor gl = m.generator_logits(ids);
    const Tensor mlm = cross_entropy(gl.reshape({-1, V}), ids.reshape({-1}));
    const Tensor dl = m.discriminator_logits(ids);
    const Tensor diff = sub(sigmoid(dl), labels.to(DType::f32));
    const Tensor loss = add(mlm, mul(mean(mul(diff, diff)), 50.0));
    loss.backward();
    opt.step();
  }
  set_step_counters(st, static_cast<double>(B * T), cpu_peak_bytes() - base);
  st.counters["params_M"] = static_cast<double>(m.num_parameters()) * 1e-6;
}
BENCHMARK_CAPTURE(BM_TrainStep_Electra, mlp, std::string("configs/electra-small-mlp.json"))
    ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);
BENCHMARK_CAPTURE(BM_TrainStep_Electra, kan, std::string("configs/electra-small-kan.json"))
    ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

// Attention forward + backward, B = 8, H = 8, D = 64, causal, fused vs composite.
template <bool kFused>
void BM_Attention(benchmark::State& st) {
  const int64_t B = 8, H = 8, T = st.range(0), D = 64;
  Generator g(3);
  Tensor q = randn({B, H, T, D}, DType::f32, &g), k = randn({B, H, T, D}, DType::f32, &g),
         v = randn({B, H, T, D}, DType::f32, &g);
  for (auto* t : {&q, &k, &v}) t->requires_grad_();
  AttentionOptions o;
  o.causal = true;
  const size_t base = cpu_live_bytes();
  cpu_reset_peak();
  for (auto _ : st) {
    for (auto* t : {&q, &k, &v}) t->zero_grad();
    const Tensor out = kFused ? scaled_dot_product_attention(q, k, v, o) : sdpa_ref(q, k, v, o);
    sum(out).backward();
  }
  const double flops = 2.5 * 4.0 * B * H * T * T * D;
  st.counters["FLOP"] = flops;
  st.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["peak_MiB"] = static_cast<double>(cpu_peak_bytes() - base) / (1 << 20);
}
BENCHMARK_TEMPLATE(BM_Attention, true)->Name("BM_Attention_fused")->RangeMultiplier(2)->Range(32, 512)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_Attention, false)->Name("BM_Attention_composite")->RangeMultiplier(2)->Range(32, 512)
    ->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
