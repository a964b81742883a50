// Model-level benchmarks: one training step (forward + backward + AdamW) of the seed-sized
// kanformer configs at batch 32 × 32 tokens and of the Electra-small configs at 8 × 128, with
// tokens/s and peak host memory; and fused vs composite attention over sequence lengths.
//   tokens per step: kanformer B·(S + T) (source and target), Electra B·T.
//   attention FLOP: 4·B·H·T·S·D forward (QKᵀ and PV), 2.5× that for forward + backward.
#include <benchmark/benchmark.h>

#include "core/allocator.h"
#include "models/config.h"
#include "models/electra.h"
#include "models/encoder_decoder.h"
#include "models/factory.h"
#include "ops/attention.h"
#include "ops/ops.h"
#include "optim/optimizer.h"

using namespace knot;

namespace {

std::shared_ptr<nn::Module> load_model(const std::string& path) {
  manual_seed(0);
  return models::build_model(models::load_json_file(path));
}

void set_step_counters(benchmark::State& st, double tokens, size_t peak) {
  st.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["peak_MiB"] = static_cast<double>(peak) / (1 << 20);
}

// configs/kanformer-{mlp,kan}.json, batch 32, source and target length 32.
void BM_TrainStep_Kanformer(benchmark::State& st, const std::string& config) {
  auto model = load_model(config);
  auto& m = dynamic_cast<models::EncoderDecoderTransformer&>(*model);
  const int64_t B = 32, L = 32, V = m.config().vocab_src_size;
  Generator g(1);
  const Tensor src = randint(4, V, {B, L}, DType::i64, &g), tgt = randint(4, V, {B, L + 1}, DType::i64, &g);
  const Tensor tgt_in = tgt.slice(1, 0, L), tgt_out = tgt.slice(1, 1, L + 1);
  optim::Adam opt(optim::decay_groups(m, 1e-4), 1e-4);
  const size_t base = cpu_live_bytes();
  cpu_reset_peak();
  for (auto _ : st) {
    opt.zero_grad();
    const Tensor logits = m.forward(src, tgt_in);
    const Tensor loss = cross_entropy(logits.reshape({-1, logits.size(-1)}), tgt_out.reshape({-1}), 1, 0.1);
    loss.backward();
    opt.step();
  }
  set_step_counters(st, static_cast<double>(B * 2 * L), cpu_peak_bytes() - base);
  st.counters["params_M"] = static_cast<double>(m.num_parameters()) * 1e-6;
}
BENCHMARK_CAPTURE(BM_TrainStep_Kanformer, mlp, std::string("configs/kanformer-mlp.json"))
    ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);
BENCHMARK_CAPTURE(BM_TrainStep_Kanformer, kan, std::string("configs/kanformer-kan.json"))
    ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

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
