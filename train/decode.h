// Decoding for the encoder-decoder model, all incremental with the decoder's KV cache
// (models::DecoderCache): each step feeds only the newest token.
//
//   greedy_decode   batched argmax decoding (finished rows are fed <pad> until all are done)
//   beam_search     one source, beam width K, scores = log p / lp(len) with GNMT's length penalty
//                   lp(len) = ((5 + len) / 6)^alpha (Wu et al. 2016); len counts the <eos>;
//                   alpha = 0 ranks by raw log-probability. The cache rows are reordered by
//                   index_select after each step. Returns the finished hypotheses, best first.
//   beam_search_batch  the same for many sources at once: one decoder batch holds every open
//                   sentence's K hypotheses, a finished sentence's rows leave it. Per sentence the
//                   same search as beam_search (ties are broken within the sentence), so the results
//                   match up to the float rounding of padded, batched sources — and it costs a
//                   fraction of the decoder calls (each call's fixed cost, e.g. KANLinear's weight
//                   layout, is paid once per batch instead of once per sentence).
//   sample_decode   ancestral sampling with temperature, top-k (0 = off) and nucleus top-p
//                   (1 = off, Holtzman et al. 2019); the draws come from a counter-based Generator
//                   (one draw per token), so a seed gives the same samples.
// All work in log-probabilities of log_softmax(logits) so that greedy, beam 1 and top-k 1 agree
// exactly (ties go to the lower id). Output ids exclude <sos> and <eos>.
#pragma once

#include <cstdint>
#include <vector>

#include "core/rng.h"
#include "models/encoder_decoder.h"

namespace knot::train {

struct SpecialTokens {
  int64_t bos = 0, eos = 1, pad = 3;
};

struct Hypothesis {
  std::vector<int64_t> ids;  // without <sos>/<eos>
  double log_prob = 0;       // sum of token log-probabilities (the <eos> included when finished)
  double score = 0;          // log_prob / length penalty
  bool finished = false;     // ended with <eos> (rather than at max_length)
};

// srcs: source ids per sentence (no padding). max_length: most tokens generated (the <eos> included).
std::vector<std::vector<int64_t>> greedy_decode(const models::EncoderDecoderTransformer& model,
                                                const std::vector<std::vector<int64_t>>& srcs,
                                                const SpecialTokens& sp, int64_t max_length);

std::vector<Hypothesis> beam_search(const models::EncoderDecoderTransformer& model, const std::vector<int64_t>& src,
                                    const SpecialTokens& sp, int64_t beam, int64_t max_length,
                                    double length_penalty = 0.6);
// Per source, its hypotheses as beam_search returns them.
std::vector<std::vector<Hypothesis>> beam_search_batch(const models::EncoderDecoderTransformer& model,
                                                     const std::vector<std::vector<int64_t>>& srcs,
                                                     const SpecialTokens& sp, int64_t beam, int64_t max_length,
                                                     double length_penalty = 0.6);

struct SampleOptions {
  double temperature = 1.0;
  int64_t top_k = 0;   // 0: no limit
  double top_p = 1.0;  // 1: no limit
};
// Errors naming the bad option (temperature <= 0, top_k < 0, top_p outside (0, 1]).
void check_sample_options(const SampleOptions& opt);
// One draw from the log-probabilities `lp` (V) with temperature, top-k and top-p: one draw of the
// generator per call. Shared by every sampler (translation here, language models in
// train/language_model.h).
int64_t sample_token(const std::vector<float>& lp, const SampleOptions& opt, Generator& gen);
// logits (B, 1, V) -> log-probabilities (B, V) as floats; a NaN is an error naming the row (a model
// that gives NaN would otherwise decode argmax 0 forever and exit 0).
std::vector<float> last_log_probs(const Tensor& logits);
// Index of the largest value, the lower index on ties.
int64_t argmax_row(const float* p, int64_t V);

Hypothesis sample_decode(const models::EncoderDecoderTransformer& model, const std::vector<int64_t>& src,
                         const SpecialTokens& sp, int64_t max_length, const SampleOptions& opt, Generator& gen);

}  // namespace knot::train
