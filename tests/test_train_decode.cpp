// Decoding with the KV cache: greedy == beam 1, batched beam == per-sentence beam, beam hypotheses
// sorted and scored by their true log-probability (recomputed without a cache), sampling with top-k 1
// == greedy, seeded samples reproducible.
#include <cmath>

#include "autograd/grad_mode.h"
#include "ops/nn_functional.h"
#include "tests/helpers.h"
#include "train/decode.h"
#include "train/translation.h"

namespace {

std::shared_ptr<knot::models::EncoderDecoderTransformer> tiny_model(uint64_t seed) {
  knot::models::EncoderDecoderConfig c;
  c.num_encoder_layers = 1;
  c.num_decoder_layers = 2;
  c.vocab_src_size = 12;
  c.vocab_tgt_size = 12;
  c.pad_src_idx = 3;
  c.pad_tgt_idx = 3;
  c.embedding_dim = 16;
  c.num_heads = 2;
  c.ffn_hidden_dim = 24;
  c.dropout_rate = 0.0;
  c.max_length = 32;
  knot::manual_seed(seed);
  auto m = std::make_shared<knot::models::EncoderDecoderTransformer>(c);
  m->eval();
  return m;
}

// log p(ids <eos>? | src) by a full (uncached) forward pass.
double sequence_log_prob(const knot::models::EncoderDecoderTransformer& m, const std::vector<int64_t>& src,
                         const std::vector<int64_t>& ids, bool with_eos, const knot::train::SpecialTokens& sp) {
  knot::NoGradGuard ng;
  std::vector<int64_t> in{sp.bos};
  in.insert(in.end(), ids.begin(), ids.end());
  std::vector<int64_t> out = ids;
  if (with_eos) out.push_back(sp.eos);
  else in.pop_back();
  const int64_t T = static_cast<int64_t>(in.size());
  const knot::Tensor logits = m.forward(knot::from_vector(src, {1, static_cast<int64_t>(src.size())}),
                                        knot::from_vector(in, {1, T}));
  const auto lp = knot::log_softmax(logits.reshape({T, -1}), 1).to_vector<float>();
  const int64_t V = logits.size(2);
  double total = 0;
  for (int64_t t = 0; t < T; ++t) total += lp[t * V + out[t]];
  return total;
}

const std::vector<std::vector<int64_t>> kSources = {{5, 6, 7}, {8, 4, 9, 10, 11}, {4}, {11, 10, 9, 8, 7, 6}};

}  // namespace

TEST_CASE("decode: greedy equals beam search with beam 1 and sampling with top-k 1", "[trainer]") {
  const knot::train::SpecialTokens sp{0, 1, 3};
  for (uint64_t seed : {1, 2, 3}) {
    const auto m = tiny_model(seed);
    const auto greedy = knot::train::greedy_decode(*m, kSources, sp, 10);  // batched, padded sources
    for (size_t i = 0; i < kSources.size(); ++i) {
      const auto one = knot::train::greedy_decode(*m, {kSources[i]}, sp, 10).at(0);
      const auto beam1 = knot::train::beam_search(*m, kSources[i], sp, 1, 10);
      REQUIRE(beam1.size() == 1);
      REQUIRE(beam1[0].ids == one);
      knot::Generator gen(99);
      knot::train::SampleOptions so;
      so.top_k = 1;
      so.temperature = 0.7;
      REQUIRE(knot::train::sample_decode(*m, kSources[i], sp, 10, so, gen).ids == one);
      // Padding the batch does not change the result beyond float rounding: compare token by token.
      REQUIRE(greedy[i] == one);
    }
  }
}

TEST_CASE("decode: beam hypotheses are sorted by score and scored by their true log-probability", "[trainer]") {
  const knot::train::SpecialTokens sp{0, 1, 3};
  const auto m = tiny_model(7);
  for (const auto& src : kSources) {
    for (double alpha : {0.0, 0.6, 1.0}) {
      const auto hyps = knot::train::beam_search(*m, src, sp, 4, 8, alpha);
      REQUIRE(!hyps.empty());
      REQUIRE(hyps.size() <= 4);
      for (size_t k = 1; k < hyps.size(); ++k) REQUIRE(hyps[k - 1].score >= hyps[k].score);
      for (const auto& h : hyps) {
        // The cached, reordered beam computes the same log-probability as a full forward pass.
        REQUIRE(h.log_prob == Approx(sequence_log_prob(*m, src, h.ids, h.finished, sp)).margin(1e-4));
        const double len = static_cast<double>(h.ids.size() + (h.finished ? 1 : 0));
        REQUIRE(h.score == Approx(h.log_prob / std::pow((5.0 + len) / 6.0, alpha)));
        for (int64_t id : h.ids) REQUIRE(id != sp.eos);
      }
      // A wider beam never finds a worse best hypothesis than greedy's under alpha = 0.
      if (alpha == 0.0) {
        const auto g = knot::train::beam_search(*m, src, sp, 1, 8, 0.0).at(0);
        if (g.finished && hyps[0].finished) REQUIRE(hyps[0].score >= g.score - 1e-6);
      }
    }
  }
  REQUIRE_THROWS_WITH(knot::train::beam_search(*m, kSources[0], sp, 0, 8), Catch::Contains("beam"));
}

TEST_CASE("decode: batched beam search equals beam search one sentence at a time", "[trainer]") {
  const knot::train::SpecialTokens sp{0, 1, 3};
  // More sources than kSources, of mixed lengths, so that sentences leave the batch at different steps.
  auto sources = kSources;
  sources.push_back({9, 9, 4, 5});
  sources.push_back({6, 11});
  const int64_t max_len = 9;
  bool left_early = false, ran_to_max = false;
  for (uint64_t seed : {1, 2, 7}) {
    const auto m = tiny_model(seed);
    for (int64_t beam : {1, 3, 4}) {
      const auto batch = knot::train::beam_search_batch(*m, sources, sp, beam, max_len, 0.6);
      REQUIRE(batch.size() == sources.size());
      for (size_t i = 0; i < sources.size(); ++i) {
        const auto one = knot::train::beam_search(*m, sources[i], sp, beam, max_len, 0.6);
        REQUIRE(batch[i].size() == one.size());
        for (size_t k = 0; k < one.size(); ++k) {
          REQUIRE(batch[i][k].ids == one[k].ids);
          REQUIRE(batch[i][k].finished == one[k].finished);
          REQUIRE(batch[i][k].log_prob == Approx(one[k].log_prob).margin(1e-4));
        }
        bool all_short = static_cast<int64_t>(one.size()) == beam;
        for (const auto& h : one) {
          all_short = all_short && h.finished && static_cast<int64_t>(h.ids.size()) + 1 < max_len;
          ran_to_max = ran_to_max || !h.finished;
        }
        left_early = left_early || all_short;
      }
    }
    // translate_ids batches length-sorted chunks and puts the results back in order.
    knot::train::DecodeSettings ds;
    ds.method = "beam";
    ds.beam = 3;
    ds.max_length = max_len;
    ds.batch_size = 4;
    const auto ids = knot::train::translate_ids(*m, sources, sp, ds);
    REQUIRE(ids.size() == sources.size());
    for (size_t i = 0; i < sources.size(); ++i)
      REQUIRE(ids[i] == knot::train::beam_search(*m, sources[i], sp, 3, max_len, ds.length_penalty).at(0).ids);
  }
  // The cases above include sentences that finished early (their rows left the batch) and others
  // that ran to max_length.
  REQUIRE(left_early);
  REQUIRE(ran_to_max);
  REQUIRE(knot::train::beam_search_batch(*tiny_model(1), {}, sp, 4, 8).empty());
}

TEST_CASE("decode: seeded sampling is reproducible, temperature, top-k and top-p are checked", "[trainer]") {
  const knot::train::SpecialTokens sp{0, 1, 3};
  const auto m = tiny_model(11);
  knot::train::SampleOptions so;
  so.temperature = 1.5;
  auto run = [&](uint64_t seed, knot::train::SampleOptions o) {
    knot::Generator gen(seed);
    std::vector<std::vector<int64_t>> out;
    for (int rep = 0; rep < 3; ++rep)
      for (const auto& src : kSources) out.push_back(knot::train::sample_decode(*m, src, sp, 12, o, gen).ids);
    return out;
  };
  REQUIRE(run(5, so) == run(5, so));
  REQUIRE(run(5, so) != run(6, so));
  // top-p tiny keeps only the most likely token: greedy again.
  knot::train::SampleOptions nucleus;
  nucleus.top_p = 1e-6;
  knot::Generator gen(1);
  for (const auto& src : kSources)
    REQUIRE(knot::train::sample_decode(*m, src, sp, 12, nucleus, gen).ids ==
            knot::train::greedy_decode(*m, {src}, sp, 12).at(0));
  knot::train::SampleOptions bad;
  bad.temperature = 0;
  REQUIRE_THROWS_WITH(knot::train::sample_decode(*m, kSources[0], sp, 4, bad, gen), Catch::Contains("temperature"));
  bad = {};
  bad.top_p = 1.5;
  REQUIRE_THROWS_WITH(knot::train::sample_decode(*m, kSources[0], sp, 4, bad, gen), Catch::Contains("top_p"));
}
