// Decoder-only language-model benchmarks (models/decoder_only.h), on kanformer's GPT2_MICRO
// architecture (configs/gpt2-micro.json: 4 layers, d = 128, 4 heads, GELU FFN 512) with a
// 4,000-token vocabulary (the make-scale tokenizer size), random weights:
//   BM_LmTrainStep/{mlp,kan}[_moe4]  one training step (forward + backward + AdamW) at batch
//                              16 × 128 tokens; kan = kan_chebyshev (degree 4) in every projection,
//                              the GPT-KAN form kanformer's README counts; _moe4 = every FFN a
//                              mixture of 4 experts, top-1 routing, capacity factor 1.25 (FLOP
//                              counts an expert's layers at k/E of the tokens, a balanced router).
//                              Counters: tokens/s,
//                              step_median_s (of the timed steps after 1 warm-up), peak_MiB
//                              (allocator high-water mark over the steps minus the live bytes
//                              before them, AdamW state excluded), FLOP (3 × forward GEMM FLOP:
//                              2·N·in·out per Linear, 2·N·in·out·(D+1) per Chebyshev layer, plus
//                              4·B·T²·qk per attention; N = B·T rows), params_M.
//   BM_LmGenerate/{mlp,kan}/{cache,nocache}  greedy generation of 128 new tokens after a 16-token
//                              prompt (train::generate_ids), with the KV cache (one position per
//                              step) or recomputing the whole prefix every step. Counter: tokens/s.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "models/config.h"
#include "models/decoder_only.h"
#include "models/factory.h"
#include "nn/attention.h"
#include "nn/linear.h"
#include "ops/ops.h"
#include "optim/optimizer.h"
#include "train/language_model.h"

using namespace knot;

namespace {

std::shared_ptr<models::DecoderOnlyTransformer> micro(const std::string& projection, bool moe = false) {
  models::Json cfg = models::load_json_file("configs/gpt2-micro.json").at("model");
  cfg["model"] = "decoder_only";
  cfg["vocab_size"] = 4000;
  cfg["embedding_init_std"] = 0.02;
  cfg["projection"] = {{"kind", projection}};
  if (moe) cfg["moe"] = {{"num_experts", 4}, {"top_k", 1}, {"capacity_factor", 1.25}};
  manual_seed(0);
  return std::dynamic_pointer_cast<models::DecoderOnlyTransformer>(models::build_model(cfg));
}

double lm_train_flops(const models::DecoderOnlyTransformer& m, int64_t B, int64_t T) {
  const double N = static_cast<double>(B * T);
  double fwd = 0;
  const auto& moe = m.config().moe;
  for (const auto& [name, mod] : m.named_modules()) {
    // An expert sees k/E of the tokens when the router balances them (dropped tokens ignored).
    const double share = name.find(".moe.experts.") != std::string::npos
                             ? static_cast<double>(moe.top_k) / static_cast<double>(moe.num_experts)
                             : 1.0;
    if (const auto* lin = dynamic_cast<const nn::Linear*>(mod)) {
      fwd += 2 * N * share * lin->in_features() * lin->out_features();
    } else if (const auto* p = dynamic_cast<const nn::Projection*>(mod)) {
      fwd += 2 * N * share * p->in_features() * p->out_features() * 5;  // Chebyshev degree 4: 5 terms
    } else if (const auto* mha = dynamic_cast<const nn::MultiHeadAttention*>(mod)) {
      fwd += 4.0 * B * T * T * mha->config().query_key_dim;
    }
  }
  if (!m.lm_head) fwd += 2 * N * m.config().embedding_dim * m.config().vocab_size;  // the tied head
  return 3 * fwd;
}

void BM_LmTrainStep(benchmark::State& st, const std::string& projection, bool moe) {
  auto model = micro(projection, moe);
  auto& m = *model;
  const int64_t B = 16, T = 128, V = m.config().vocab_size;
  Generator g(1);
  const Tensor seq = randint(4, V, {B, T + 1}, DType::i64, &g);
  const Tensor in = seq.slice(1, 0, T).contiguous(), target = seq.slice(1, 1, T + 1).contiguous();
  optim::Adam opt(optim::decay_groups(m, 0.1), 3e-4);
  const size_t base = cpu_live_bytes();
  cpu_reset_peak();
  auto step = [&] {
    opt.zero_grad();
    Tensor loss = cross_entropy(m.forward(in).reshape({-1, V}), target.reshape({-1}));
    if (moe) loss = add(loss, m.moe_aux_loss());
    loss.backward();
    opt.step();
  };
  step();  // warm-up
  std::vector<double> times;
  for (auto _ : st) {
    const auto t0 = std::chrono::steady_clock::now();
    step();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  const double flops = lm_train_flops(m, B, T);
  st.counters["tokens/s"] = static_cast<double>(B * T) / median;
  st.counters["step_median_s"] = median;
  st.counters["peak_MiB"] = static_cast<double>(cpu_peak_bytes() - base) / (1 << 20);
  st.counters["FLOP"] = flops;
  st.counters["GFLOP/s"] = flops / median * 1e-9;
  st.counters["params_M"] = static_cast<double>(m.num_parameters()) * 1e-6;
}
BENCHMARK_CAPTURE(BM_LmTrainStep, mlp, std::string("mlp"), false)->Unit(benchmark::kMillisecond)->Iterations(5)->UseRealTime();
BENCHMARK_CAPTURE(BM_LmTrainStep, mlp_moe4, std::string("mlp"), true)->Unit(benchmark::kMillisecond)->Iterations(5)->UseRealTime();
BENCHMARK_CAPTURE(BM_LmTrainStep, kan, std::string("kan_chebyshev"), false)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK_CAPTURE(BM_LmTrainStep, kan_moe4, std::string("kan_chebyshev"), true)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

void BM_LmGenerate(benchmark::State& st, const std::string& projection, bool cache) {
  auto model = micro(projection);
  model->eval();
  train::GenerateOptions opt;
  opt.greedy = true;
  opt.max_new_tokens = 128;
  opt.use_cache = cache;
  std::vector<int64_t> prompt;
  for (int64_t i = 0; i < 16; ++i) prompt.push_back(10 + 7 * i);
  int64_t produced = 0;
  for (auto _ : st) produced += static_cast<int64_t>(train::generate_ids(*model, prompt, opt).ids.size());
  st.counters["tokens/s"] = benchmark::Counter(static_cast<double>(produced), benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(BM_LmGenerate, mlp_cache, std::string("mlp"), true)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK_CAPTURE(BM_LmGenerate, mlp_nocache, std::string("mlp"), false)->Unit(benchmark::kMillisecond)->Iterations(2)->UseRealTime();
BENCHMARK_CAPTURE(BM_LmGenerate, kan_cache, std::string("kan_chebyshev"), true)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK_CAPTURE(BM_LmGenerate, kan_nocache, std::string("kan_chebyshev"), false)->Unit(benchmark::kMillisecond)->Iterations(2)->UseRealTime();

}  // namespace
