// Decoding benchmarks: greedy and beam search (beam 4) of the seed-sized kanformer configs
// (configs/kanformer-{mlp,kan}.json, random weights), 16 random source sentences of 8–24 tokens, at
// most 16 generated tokens each (the counter out_tokens/sentence says how many the best hypotheses
// have: random weights seldom pick <eos>, so the sentences run to the limit). Three ways:
//   greedy          train::greedy_decode, the 16 sentences in one batch (what knot eval does)
//   beam4_batched   train::beam_search_batch, one decoder batch of 16 × 4 hypotheses
//   beam4_serial    train::beam_search sentence by sentence (how knot eval ran beam search before
//                   beam_search_batch), the reference for the batched search
// Counters: sentences/s, out_tokens/sentence. Beam 4 does about 4× greedy's arithmetic; what batching saves are the
// decoder calls' fixed costs (KANLinear's per-call weight layout, OpenMP fork/join of many small
// ops), paid once per step of the batch instead of once per step of every sentence.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "core/rng.h"
#include "models/config.h"
#include "models/encoder_decoder.h"
#include "models/factory.h"
#include "train/decode.h"

using namespace knot;

namespace {

enum class DecodeWay { greedy, beam4_batched, beam4_serial };

void BM_Decode(benchmark::State& st, const std::string& config, DecodeWay way) {
  manual_seed(0);
  auto model = models::build_model(models::load_json_file(config));
  auto& m = dynamic_cast<models::EncoderDecoderTransformer&>(*model);
  m.eval();
  const int64_t n = 16, max_len = 16, beam = 4, V = m.config().vocab_src_size;
  Generator g(3);
  std::vector<std::vector<int64_t>> srcs;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t len = 8 + (i * 5) % 17;  // 8 … 24
    srcs.push_back(randint(4, V, {len}, DType::i64, &g).to_vector<int64_t>());
  }
  const train::SpecialTokens sp{0, 1, m.config().pad_tgt_idx};
  double out_tokens = 0;  // generated tokens per sentence (the best hypothesis's, <eos> excluded)
  for (auto _ : st) {
    out_tokens = 0;
    if (way == DecodeWay::greedy) {
      for (const auto& ids : train::greedy_decode(m, srcs, sp, max_len)) out_tokens += static_cast<double>(ids.size());
    } else if (way == DecodeWay::beam4_batched) {
      for (const auto& hyps : train::beam_search_batch(m, srcs, sp, beam, max_len, 0.6))
        out_tokens += static_cast<double>(hyps.at(0).ids.size());
    } else {
      for (const auto& s : srcs)
        out_tokens += static_cast<double>(train::beam_search(m, s, sp, beam, max_len, 0.6).at(0).ids.size());
    }
  }
  st.counters["out_tokens/sentence"] = out_tokens / static_cast<double>(n);
  st.counters["sentences/s"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate);
  st.counters["params_M"] = static_cast<double>(m.num_parameters()) * 1e-6;
}

const std::string kMlp = "configs/kanformer-mlp.json", kKan = "configs/kanformer-kan.json";
BENCHMARK_CAPTURE(BM_Decode, mlp_greedy, kMlp, DecodeWay::greedy)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Decode, mlp_beam4_batched, kMlp, DecodeWay::beam4_batched)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Decode, mlp_beam4_serial, kMlp, DecodeWay::beam4_serial)
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
BENCHMARK_CAPTURE(BM_Decode, kan_greedy, kKan, DecodeWay::greedy)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Decode, kan_beam4_batched, kKan, DecodeWay::beam4_batched)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Decode, kan_beam4_serial, kKan, DecodeWay::beam4_serial)
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

}  // namespace
