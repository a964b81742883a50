// Greedy, beam and sampled decoding with the KV cache (see decode.h).
#include "train/decode.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "ops/indexing.h"
#include "ops/nn_functional.h"

namespace knot::train {
namespace {

// (B, S) i64 ids, rows padded with pad.
Tensor pad_batch(const std::vector<std::vector<int64_t>>& rows, int64_t pad) {
  size_t S = 1;
  for (const auto& r : rows) S = std::max(S, r.size());
  std::vector<int64_t> flat(rows.size() * S, pad);
  for (size_t b = 0; b < rows.size(); ++b) std::copy(rows[b].begin(), rows[b].end(), flat.begin() + b * S);
  return from_vector(flat, {static_cast<int64_t>(rows.size()), static_cast<int64_t>(S)});
}

void reorder_cache(models::DecoderCache& cache, const std::vector<int64_t>& parents) {
  const Tensor idx = from_vector(parents);
  for (auto& layer : cache.layers) {
    for (nn::KVCache* kv : {&layer.self_attn, &layer.cross_attn}) {
      if (!kv->k.defined()) continue;
      kv->k = index_select(kv->k, 0, idx.to(kv->k.device()));
      kv->v = index_select(kv->v, 0, idx.to(kv->v.device()));
    }
  }
  std::vector<std::vector<int64_t>> ids;
  for (int64_t p : parents) ids.push_back(cache.tgt_ids.at(static_cast<size_t>(p)));
  cache.tgt_ids = std::move(ids);
}

double gnmt_penalty(size_t len, double alpha) {
  return alpha == 0.0 ? 1.0 : std::pow((5.0 + static_cast<double>(len)) / 6.0, alpha);
}

}  // namespace

std::vector<float> last_log_probs(const Tensor& logits) {
  const int64_t B = logits.size(0), V = logits.size(2);
  std::vector<float> lp = log_softmax(logits.reshape({B, V}).to(DType::f32), 1).contiguous().to_vector<float>();
  for (size_t i = 0; i < lp.size(); ++i)
    KNOT_CHECK(!std::isnan(lp[i]), "decode: the model's output is NaN (row {} of {}): its weights are finite but the "
               "forward pass overflows; the checkpoint is unusable (a diverged run?)", i / static_cast<size_t>(V), B);
  return lp;
}

int64_t argmax_row(const float* p, int64_t V) {
  int64_t best = 0;
  for (int64_t v = 1; v < V; ++v)
    if (p[v] > p[best]) best = v;
  return best;
}


std::vector<std::vector<int64_t>> greedy_decode(const models::EncoderDecoderTransformer& model,
                                                const std::vector<std::vector<int64_t>>& srcs,
                                                const SpecialTokens& sp, int64_t max_length) {
  NoGradGuard ng;
  const int64_t B = static_cast<int64_t>(srcs.size());
  std::vector<std::vector<int64_t>> out(srcs.size());
  if (B == 0) return out;
  const Tensor src = pad_batch(srcs, sp.pad);
  const Tensor memory = model.encode(src);
  models::DecoderCache cache = model.new_cache();
  std::vector<int64_t> next(static_cast<size_t>(B), sp.bos);
  std::vector<bool> done(static_cast<size_t>(B), false);
  int64_t remaining = B;
  for (int64_t t = 0; t < max_length && remaining > 0; ++t) {
    const Tensor logits = model.decode(from_vector(next, {B, 1}), memory, src, &cache);
    const std::vector<float> lp = last_log_probs(logits);
    const int64_t V = logits.size(2);
    for (int64_t b = 0; b < B; ++b) {
      if (done[b]) {
        next[b] = sp.pad;
        continue;
      }
      const int64_t tok = argmax_row(lp.data() + b * V, V);
      if (tok == sp.eos) {
        done[b] = true;
        --remaining;
        next[b] = sp.pad;
      } else {
        out[b].push_back(tok);
        next[b] = tok;
      }
    }
  }
  return out;
}

std::vector<std::vector<Hypothesis>> beam_search_batch(const models::EncoderDecoderTransformer& model,
                                                     const std::vector<std::vector<int64_t>>& srcs,
                                                     const SpecialTokens& sp, int64_t beam, int64_t max_length,
                                                     double length_penalty) {
  KNOT_CHECK(beam >= 1, "beam_search: beam must be >= 1, got {}", beam);
  NoGradGuard ng;
  const size_t B = srcs.size();
  std::vector<std::vector<Hypothesis>> finished(B);
  if (B == 0) return finished;
  Tensor src = pad_batch(srcs, sp.pad);
  Tensor memory = model.encode(src);
  models::DecoderCache cache = model.new_cache();
  // live[n]: sentence n's open hypotheses. The decoder batch holds the live hypotheses of the
  // sentences in `active`, in that order, so sentence n's rows are a contiguous block.
  std::vector<std::vector<Hypothesis>> live(B, std::vector<Hypothesis>(1));
  std::vector<size_t> active(B);
  std::iota(active.begin(), active.end(), size_t{0});
  struct Cand {
    double logp;
    int64_t row, tok;  // row within the sentence's block
  };
  std::vector<Cand> cands;
  for (int64_t t = 0; t < max_length && !active.empty(); ++t) {
    std::vector<int64_t> last;
    for (size_t n : active)
      for (const Hypothesis& h : live[n]) last.push_back(h.ids.empty() ? sp.bos : h.ids.back());
    const int64_t R = static_cast<int64_t>(last.size());
    const Tensor logits = model.decode(from_vector(last, {R, 1}), memory, src, &cache);
    const int64_t V = logits.size(2);
    const std::vector<float> lp = last_log_probs(logits);
    std::vector<size_t> still;  // sentences that stay open, in row order
    std::vector<int64_t> rows;  // their new rows' parents (batch rows of this step)
    int64_t off = 0;
    for (size_t n : active) {
      const int64_t L = static_cast<int64_t>(live[n].size());
      // The best 2K (hypothesis, token) continuations, ties to the lower (row, token).
      cands.clear();
      cands.reserve(static_cast<size_t>(L * V));
      for (int64_t i = 0; i < L; ++i) {
        const float* row = lp.data() + (off + i) * V;
        for (int64_t v = 0; v < V; ++v) cands.push_back({live[n][i].log_prob + row[v], i, v});
      }
      const size_t keep = std::min(cands.size(), static_cast<size_t>(2 * beam));
      std::partial_sort(cands.begin(), cands.begin() + keep, cands.end(), [](const Cand& a, const Cand& b) {
        if (a.logp != b.logp) return a.logp > b.logp;
        return a.row != b.row ? a.row < b.row : a.tok < b.tok;
      });
      std::vector<Hypothesis> next;
      std::vector<int64_t> parents;
      for (size_t c = 0; c < keep && static_cast<int64_t>(next.size()) < beam; ++c) {
        Hypothesis h = live[n][cands[c].row];
        h.log_prob = cands[c].logp;
        if (cands[c].tok == sp.eos) {
          if (static_cast<int64_t>(c) < beam) {  // an <eos> counts only among the top K
            h.finished = true;
            h.score = h.log_prob / gnmt_penalty(h.ids.size() + 1, length_penalty);
            finished[n].push_back(std::move(h));
          }
          continue;
        }
        h.ids.push_back(cands[c].tok);
        next.push_back(std::move(h));
        parents.push_back(off + cands[c].row);
      }
      off += L;
      if (static_cast<int64_t>(finished[n].size()) >= beam || next.empty()) {
        live[n].clear();  // done: its rows leave the batch
        continue;
      }
      live[n] = std::move(next);
      still.push_back(n);
      rows.insert(rows.end(), parents.begin(), parents.end());
    }
    active = std::move(still);
    if (active.empty()) break;
    reorder_cache(cache, rows);
    const Tensor idx = from_vector(rows);
    src = index_select(src, 0, idx);
    memory = index_select(memory, 0, idx);
  }
  for (size_t n = 0; n < B; ++n) {
    for (auto& h : live[n]) {  // reached max_length without <eos>
      h.score = h.log_prob / gnmt_penalty(h.ids.size(), length_penalty);
      finished[n].push_back(std::move(h));
    }
    std::stable_sort(finished[n].begin(), finished[n].end(),
                     [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
    if (static_cast<int64_t>(finished[n].size()) > beam) finished[n].resize(static_cast<size_t>(beam));
  }
  return finished;
}

std::vector<Hypothesis> beam_search(const models::EncoderDecoderTransformer& model, const std::vector<int64_t>& src_ids,
                                    const SpecialTokens& sp, int64_t beam, int64_t max_length, double length_penalty) {
  return beam_search_batch(model, {src_ids}, sp, beam, max_length, length_penalty).at(0);
}

void check_sample_options(const SampleOptions& opt) {
  KNOT_CHECK(opt.temperature > 0, "sample: temperature must be > 0, got {}", opt.temperature);
  KNOT_CHECK(opt.top_k >= 0, "sample: top_k must be >= 0, got {}", opt.top_k);
  KNOT_CHECK(opt.top_p > 0 && opt.top_p <= 1, "sample: top_p must be in (0, 1], got {}", opt.top_p);
}

int64_t sample_token(const std::vector<float>& lp, const SampleOptions& opt, Generator& gen) {
  const int64_t V = static_cast<int64_t>(lp.size());
  // Candidates by decreasing probability (ties: lower id first).
  std::vector<int64_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return lp[a] > lp[b]; });
  size_t n = order.size();
  if (opt.top_k > 0) n = std::min(n, static_cast<size_t>(opt.top_k));
  std::vector<double> w(n);
  double total = 0;
  for (size_t i = 0; i < n; ++i) total += (w[i] = std::exp((lp[order[i]] - lp[order[0]]) / opt.temperature));
  if (opt.top_p < 1.0) {  // smallest prefix whose mass reaches top_p
    double cum = 0;
    size_t m = 0;
    while (m < n) {
      cum += w[m++] / total;
      if (cum >= opt.top_p) break;
    }
    n = m;
    total = 0;
    for (size_t i = 0; i < n; ++i) total += w[i];
  }
  const double u = uniform_f64(philox_element(gen.seed(), gen.next_draw(), 0)) * total;
  size_t pick = 0;
  for (double acc = w[0]; pick + 1 < n && acc <= u; acc += w[++pick]) {
  }
  return order[pick];
}

Hypothesis sample_decode(const models::EncoderDecoderTransformer& model, const std::vector<int64_t>& src_ids,
                         const SpecialTokens& sp, int64_t max_length, const SampleOptions& opt, Generator& gen) {
  check_sample_options(opt);
  NoGradGuard ng;
  const Tensor src = pad_batch({src_ids}, sp.pad);
  const Tensor memory = model.encode(src);
  models::DecoderCache cache = model.new_cache();
  Hypothesis h;
  int64_t last = sp.bos;
  for (int64_t t = 0; t < max_length; ++t) {
    const Tensor logits = model.decode(from_vector(std::vector<int64_t>{last}, {1, 1}), memory, src, &cache);
    const std::vector<float> lp = last_log_probs(logits);
    const int64_t tok = sample_token(lp, opt, gen);
    h.log_prob += lp[tok];
    if (tok == sp.eos) {
      h.finished = true;
      break;
    }
    h.ids.push_back(tok);
    last = tok;
  }
  h.score = h.log_prob;
  return h;
}

}  // namespace knot::train
