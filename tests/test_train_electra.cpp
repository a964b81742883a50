// ELECTRA pretraining (train/electra_pretrain.h): packing, masking statistics and determinism,
// discriminator labels, no RTD gradient into the generator, BCE by hand, sampling, metrics from a
// known confusion matrix, a tiny run whose loss falls, bit-exact resume, and config errors.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <set>

#include "autograd/grad_mode.h"
#include "data/jsonl.h"
#include "models/config.h"
#include "tests/helpers.h"
#include "tests/train_helpers.h"
#include "train/checkpoint.h"
#include "train/electra_pretrain.h"

namespace fs = std::filesystem;
using knot::models::Json;
namespace kt = knot::train;

namespace {

std::string fixture(const std::string& name) { return knot::test::train_fixture(name); }
std::string fresh_dir(const std::string& name) { return knot::test::fresh_run_dir("electra", name); }
knot::train::TrainerHooks quiet() { return knot::test::quiet_hooks(); }
using knot::test::read_metrics;
using knot::test::timeless;

const knot::data::WordPieceTokenizer& fixture_tokenizer() {
  static const auto tok = knot::data::WordPieceTokenizer::load(fixture("electra-vocab.txt"));
  return tok;
}

// A small Electra over the fixture vocabulary (39 tokens, [PAD] = 0).
knot::models::ElectraConfig tiny_model_config(double dropout) {
  return knot::models::ElectraConfig::from_json(
      Json{{"model", "electra"},
           {"vocab_size", fixture_tokenizer().vocab_size()},
           {"embedding_size", 16},
           {"max_position_embeddings", 32},
           {"hidden_dropout", dropout},
           {"attention_dropout", dropout},
           {"generator", {{"hidden_size", 8}, {"num_layers", 1}, {"num_heads", 1}, {"intermediate_size", 16}}},
           {"discriminator", {{"hidden_size", 16}, {"num_layers", 2}, {"num_heads", 2}, {"intermediate_size", 32}}}});
}

// Sequences [CLS] w... [SEP] of the fixture text's first lines.
std::vector<std::vector<int32_t>> fixture_sequences(int64_t max_length) {
  const auto& tok = fixture_tokenizer();
  const auto v = kt::electra_vocab(tok);
  const auto lines = kt::read_text_lines(fixture("electra-text.txt"));
  return kt::encode_and_pack(lines, 0, 40, tok, v, max_length);
}

Json tiny_config(int64_t steps) { return knot::test::tiny_electra_config(steps); }

double grad_abs_sum(const knot::Tensor& p) {
  const knot::Tensor g = p.grad();
  if (!g.defined()) return 0.0;
  double s = 0;
  for (double x : g.to_vector<double>()) s += std::abs(x);
  return s;
}

}  // namespace

TEST_CASE("electra: lines pack into [CLS] ... [SEP] sequences of at most max_length", "[trainer][electra]") {
  kt::ElectraVocab v;
  v.pad = 0;
  v.cls = 2;
  v.sep = 3;
  v.mask = 4;
  const std::vector<std::vector<int32_t>> lines = {{10, 11}, {12, 13, 14}, {}, {15}, {20, 21, 22, 23, 24, 25, 26},
                                                   {16}};
  int64_t cut = 0;
  const auto seqs = kt::pack_sequences(lines, v, 7, &cut);  // at most 5 tokens between [CLS] and [SEP]
  const std::vector<std::vector<int32_t>> expected = {
      {2, 10, 11, 12, 13, 14, 3},  // two lines fit together
      {2, 15, 3},                  // the empty line ended the sequence before; the next line does not fit
      {2, 20, 21, 22, 23, 24, 3},  // a long line is cut
      {2, 16, 3}};
  REQUIRE(seqs == expected);
  REQUIRE(cut == 1);

  // The held-out validation lines are the last ceil(10 %) of the file: 244 lines -> 25.
  kt::ElectraDataConfig dc;
  dc.train = {fixture("electra-text.txt")};
  dc.val_fraction = 0.1;
  dc.max_length = 32;
  const auto& tok = fixture_tokenizer();
  const auto corpus = kt::load_electra_corpus(dc, tok, kt::electra_vocab(tok));
  REQUIRE(corpus.val_lines == 25);
  REQUIRE(corpus.train_lines == 219);
  for (const auto& s : corpus.train) {
    REQUIRE(s.size() <= 32);
    REQUIRE(s.front() == tok.bos_id());
    REQUIRE(s.back() == tok.eos_id());
  }
  dc.max_train_lines = 10;
  REQUIRE(kt::load_electra_corpus(dc, tok, kt::electra_vocab(tok)).train_lines == 10);
}

TEST_CASE("electra: masking rate, 80/10/10 split, specials and padding never chosen, deterministic",
          "[trainer][electra]") {
  const auto& tok = fixture_tokenizer();
  const kt::ElectraVocab v = kt::electra_vocab(tok);
  const int32_t unk = tok.unk_id(), unused = tok.token_to_id("[unused0]");
  REQUIRE(unused >= 0);
  REQUIRE(v.special[static_cast<size_t>(unused)] == 1);
  REQUIRE(std::find(v.random_pool.begin(), v.random_pool.end(), unused) == v.random_pool.end());
  REQUIRE(static_cast<int64_t>(v.random_pool.size()) == tok.vocab_size() - 6);

  // 600 sequences of 8..60 tokens, with [UNK] and [unused0] sprinkled in, and 200 of one token.
  std::vector<std::vector<int32_t>> seqs;
  for (int i = 0; i < 800; ++i) {
    const int64_t len = i < 600 ? 8 + static_cast<int64_t>(knot::uniform_f64(knot::philox_element(3, 0, i)) * 53) : 1;
    std::vector<int32_t> s = {v.cls};
    for (int64_t t = 0; t < len; ++t) {
      const double u = knot::uniform_f64(knot::philox_element(3, 1, i * 100 + t));
      s.push_back(u < 0.05  ? unk
                  : u < 0.1 ? unused
                            : v.random_pool[static_cast<size_t>(u * 1e6) % v.random_pool.size()]);
    }
    s.push_back(v.sep);
    seqs.push_back(std::move(s));
  }
  int64_t candidates = 0, chosen = 0;
  std::map<kt::Corruption, int64_t> kinds;
  std::vector<kt::MaskedBatch> batches;
  for (int64_t start = 0; start < 800; start += 50) {
    std::vector<int64_t> idx;
    for (int64_t i = start; i < start + 50; ++i) idx.push_back(i);
    auto mb = kt::mask_batch(seqs, idx, v, 0.15, 77, 3);
    std::vector<int64_t> per_row(50, 0);
    for (size_t k = 0; k < mb.positions.size(); ++k) {
      const int64_t pos = mb.positions[k], r = pos / mb.length, t = pos % mb.length;
      const auto& s = seqs[static_cast<size_t>(idx[static_cast<size_t>(r)])];
      REQUIRE(t < static_cast<int64_t>(s.size()));                              // never padding
      REQUIRE(v.special[static_cast<size_t>(s[static_cast<size_t>(t)])] == 0);  // never [CLS] [SEP] [UNK] [unused0]
      REQUIRE(mb.original[static_cast<size_t>(pos)] == s[static_cast<size_t>(t)]);
      const int64_t in = mb.input[static_cast<size_t>(pos)];
      switch (mb.corruption[k]) {
        case kt::Corruption::mask:
          REQUIRE(in == v.mask);
          break;
        case kt::Corruption::random:
          REQUIRE(v.special[static_cast<size_t>(in)] == 0);
          break;
        case kt::Corruption::keep:
          REQUIRE(in == mb.original[static_cast<size_t>(pos)]);
          break;
      }
      if (k > 0) REQUIRE(mb.positions[k] > mb.positions[k - 1]);
      ++kinds[mb.corruption[k]];
      ++per_row[static_cast<size_t>(r)];
    }
    for (int64_t r = 0; r < 50; ++r) {  // at least one per sequence that has a candidate
      const auto& s = seqs[static_cast<size_t>(idx[static_cast<size_t>(r)])];
      const bool has = std::any_of(s.begin(), s.end(), [&](int32_t id) { return !v.special[static_cast<size_t>(id)]; });
      REQUIRE(per_row[static_cast<size_t>(r)] >= (has ? 1 : 0));
    }
    // Everything that was not chosen is unchanged.
    std::set<int64_t> pos(mb.positions.begin(), mb.positions.end());
    for (size_t i = 0; i < mb.input.size(); ++i)
      if (!pos.count(static_cast<int64_t>(i))) REQUIRE(mb.input[i] == mb.original[i]);
    if (start < 600) {
      chosen += static_cast<int64_t>(mb.positions.size());
      for (int64_t i : idx)
        for (int32_t id : seqs[static_cast<size_t>(i)]) candidates += v.special[static_cast<size_t>(id)] ? 0 : 1;
    }
    batches.push_back(std::move(mb));
  }
  const double rate = static_cast<double>(chosen) / static_cast<double>(candidates);
  int64_t total = 0;
  for (auto& [k, n] : kinds) total += n;
  const double mask_share = static_cast<double>(kinds[kt::Corruption::mask]) / static_cast<double>(total);
  const double random_share = static_cast<double>(kinds[kt::Corruption::random]) / static_cast<double>(total);
  const double keep_share = static_cast<double>(kinds[kt::Corruption::keep]) / static_cast<double>(total);
  INFO("candidates " << candidates << " rate " << rate << " mask " << mask_share << " random " << random_share
                     << " keep " << keep_share);
  REQUIRE(candidates > 15000);
  REQUIRE(std::abs(rate - 0.15) < 0.01);  // ~4 standard deviations
  REQUIRE(std::abs(mask_share - 0.8) < 0.03);
  REQUIRE(std::abs(random_share - 0.1) < 0.025);
  REQUIRE(std::abs(keep_share - 0.1) < 0.025);

  // Same (key, draw, sequences): the same masks; another draw (epoch) or key (seed): other masks.
  std::vector<int64_t> idx(50);
  std::iota(idx.begin(), idx.end(), 0);
  const auto again = kt::mask_batch(seqs, idx, v, 0.15, 77, 3);
  REQUIRE(again.positions == batches[0].positions);
  REQUIRE(again.input == batches[0].input);
  REQUIRE(kt::mask_batch(seqs, idx, v, 0.15, 77, 4).positions != batches[0].positions);
  REQUIRE(kt::mask_batch(seqs, idx, v, 0.15, 78, 3).positions != batches[0].positions);
  // A sequence's mask does not depend on its batch: sequence 7 alone gets the same positions.
  const auto alone = kt::mask_batch(seqs, {7}, v, 0.15, 77, 3);
  std::vector<int64_t> in_batch;
  for (int64_t p : batches[0].positions)
    if (p / batches[0].length == 7) in_batch.push_back(p % batches[0].length);
  REQUIRE(alone.positions == in_batch);
  // Different training (seed, epoch, index) give different masks through the keys.
  REQUIRE(kt::ElectraKeys(1).mask != kt::ElectraKeys(2).mask);
  REQUIRE(kt::ElectraKeys(1).mask != kt::ElectraKeys(1).sample);
}

TEST_CASE("electra: discriminator labels are (replaced != original) over non-padding tokens", "[trainer][electra]") {
  const auto& tok = fixture_tokenizer();
  const kt::ElectraVocab v = kt::electra_vocab(tok);
  knot::manual_seed(3);
  knot::models::Electra model(tiny_model_config(0.0));
  model.eval();
  const auto seqs = fixture_sequences(20);
  REQUIRE(seqs.size() >= 6);
  const std::vector<int64_t> idx = {0, 1, 2, 3, 4, 5};
  kt::ElectraOptions o;
  o.mask_prob = 0.3;
  const auto mb = kt::mask_batch(seqs, idx, v, o.mask_prob, 9, 0);
  knot::NoGradGuard ng;
  const auto out = kt::electra_forward(model, mb, o, 10, 0);
  const int64_t B = mb.batch, T = mb.length;
  REQUIRE(out.disc_logits.shape() == knot::Shape{B, T});
  REQUIRE(out.gen_logits.shape() == knot::Shape{static_cast<int64_t>(mb.positions.size()), tok.vocab_size()});
  std::set<int64_t> chosen(mb.positions.begin(), mb.positions.end());
  int64_t replaced = 0, pads = 0;
  for (int64_t i = 0; i < B * T; ++i) {
    const size_t k = static_cast<size_t>(i);
    const bool pad = mb.original[k] == v.pad;
    pads += pad;
    REQUIRE(out.weights[k] == (pad ? 0.0f : 1.0f));
    REQUIRE(out.labels[k] == (!pad && out.replaced[k] != mb.original[k] ? 1.0f : 0.0f));
    if (!chosen.count(i)) REQUIRE(out.replaced[k] == mb.original[k]);  // only chosen positions are resampled
    replaced += out.labels[k] > 0;
  }
  REQUIRE(pads > 0);      // the batch has padding, and it is ignored
  REQUIRE(replaced > 0);  // an untrained generator replaces most chosen tokens
  // The RTD loss is the mean BCE over the non-pad positions, by hand.
  const auto x = out.disc_logits.to_vector<double>();
  double sum = 0, n = 0;
  for (size_t k = 0; k < x.size(); ++k) {
    if (out.weights[k] == 0) continue;
    const double p = 1.0 / (1.0 + std::exp(-x[k]));
    sum += -(out.labels[k] * std::log(p) + (1 - out.labels[k]) * std::log(1 - p));
    n += 1;
  }
  REQUIRE(out.rtd_loss.item() == Approx(sum / n).epsilon(1e-5));
  REQUIRE(out.loss.item() == Approx(out.mlm_loss.item() + 50.0 * out.rtd_loss.item()).epsilon(1e-5));
  // The generator logits at the chosen positions equal the full generator's.
  const knot::Tensor full = model.generator_logits(knot::from_vector(mb.input, {B, T})).reshape({B * T, -1});
  const knot::Tensor at = knot::index_select(full, 0, knot::from_vector(mb.positions));
  REQUIRE(knot::test::max_abs_diff(at, out.gen_logits) < 1e-5);
  // The same batch and keys give the same replacements (eval mode: no dropout).
  REQUIRE(kt::electra_forward(model, mb, o, 10, 0).replaced == out.replaced);
}

TEST_CASE("electra: the RTD term sends no gradient into the generator's own layers", "[trainer][electra]") {
  const auto& tok = fixture_tokenizer();
  const kt::ElectraVocab v = kt::electra_vocab(tok);
  knot::manual_seed(4);
  knot::models::Electra model(tiny_model_config(0.1));
  model.train();
  const auto seqs = fixture_sequences(24);
  const auto mb = kt::mask_batch(seqs, {0, 1, 2, 3}, v, 0.15, 21, 0);
  kt::ElectraOptions o;

  // Loss with MLM weight 0: only the RTD term.
  kt::electra_forward(model, mb, o, 22, 0).rtd_loss.backward();
  double gen = 0, disc = 0;
  for (const auto& [name, p] : model.named_parameters()) {
    if (name.rfind("generator.", 0) == 0) gen += grad_abs_sum(p);
    if (name.rfind("discriminator.layers.", 0) == 0 && name.find("weight") != std::string::npos) {
      INFO(name);
      REQUIRE(grad_abs_sum(p) > 0);
    }
    if (name.rfind("discriminator.", 0) == 0) disc += grad_abs_sum(p);
  }
  REQUIRE(gen == 0.0);
  REQUIRE(disc > 0.0);
  REQUIRE(grad_abs_sum(model.word_embeddings->weight) > 0);  // shared embeddings do learn from RTD

  // And the MLM term trains the generator, not the discriminator.
  for (const auto& [name, p] : model.named_parameters()) p.zero_grad();
  kt::electra_forward(model, mb, o, 22, 0).mlm_loss.backward();
  gen = disc = 0;
  for (const auto& [name, p] : model.named_parameters()) {
    if (name.rfind("generator.", 0) == 0) gen += grad_abs_sum(p);
    if (name.rfind("discriminator.", 0) == 0) disc += grad_abs_sum(p);
  }
  REQUIRE(gen > 0.0);
  REQUIRE(disc == 0.0);
}

TEST_CASE("electra: embeddings start from N(0, 0.02^2) with the [PAD] row zero, so the MLM loss starts near ln V",
          "[trainer][electra]") {
  const auto& tok = fixture_tokenizer();
  knot::manual_seed(6);
  knot::models::Electra model(tiny_model_config(0.0));
  kt::init_electra_embeddings(model, 0.02);
  const auto w = model.word_embeddings->weight.to_vector<double>();
  const int64_t E = model.word_embeddings->dim();
  double ss = 0;
  for (size_t i = static_cast<size_t>(E); i < w.size(); ++i) ss += w[i] * w[i];
  REQUIRE(std::sqrt(ss / static_cast<double>(w.size() - static_cast<size_t>(E))) == Approx(0.02).epsilon(0.1));
  for (int64_t j = 0; j < E; ++j) REQUIRE(w[static_cast<size_t>(j)] == 0.0);  // [PAD] = id 0
  model.eval();
  const auto v = kt::electra_vocab(tok);
  const auto seqs = fixture_sequences(24);
  const auto mb = kt::mask_batch(seqs, {0, 1, 2, 3, 4, 5, 6, 7}, v, 0.15, 1, 0);
  knot::NoGradGuard ng;
  const double mlm = kt::electra_forward(model, mb, kt::ElectraOptions{}, 2, 0).mlm_loss.item();
  REQUIRE(std::abs(mlm - std::log(static_cast<double>(tok.vocab_size()))) < 0.3);
}

TEST_CASE("electra: sampling follows softmax(logits / temperature) and is a pure function of the key",
          "[trainer][electra]") {
  const int64_t M = 4000;
  std::vector<float> l;
  for (int64_t r = 0; r < M; ++r) {
    l.push_back(std::log(0.7f));
    l.push_back(std::log(0.2f));
    l.push_back(std::log(0.1f));
  }
  const knot::Tensor logits = knot::from_vector(l, {M, 3});
  std::vector<uint64_t> elements(M);
  std::iota(elements.begin(), elements.end(), 0);
  const auto s = kt::sample_tokens(logits, 1.0, 5, 0, elements);
  std::vector<double> freq(3, 0);
  for (int64_t t : s) freq[static_cast<size_t>(t)] += 1.0 / M;
  INFO(freq[0] << " " << freq[1] << " " << freq[2]);
  REQUIRE(std::abs(freq[0] - 0.7) < 0.03);
  REQUIRE(std::abs(freq[1] - 0.2) < 0.03);
  REQUIRE(std::abs(freq[2] - 0.1) < 0.03);
  REQUIRE(kt::sample_tokens(logits, 1.0, 5, 0, elements) == s);
  REQUIRE(kt::sample_tokens(logits, 1.0, 6, 0, elements) != s);
  // Temperature 2 flattens: p ∝ sqrt(0.7, 0.2, 0.1).
  const auto hot = kt::sample_tokens(logits, 2.0, 5, 1, elements);
  const double z = std::sqrt(0.7) + std::sqrt(0.2) + std::sqrt(0.1);
  REQUIRE(std::abs(static_cast<double>(std::count(hot.begin(), hot.end(), 0)) / M - std::sqrt(0.7) / z) < 0.03);
  // Near-zero temperature: the argmax.
  const auto cold = kt::sample_tokens(logits, 1e-3, 5, 2, elements);
  REQUIRE(std::count(cold.begin(), cold.end(), 0) == M);
}

TEST_CASE("electra: discriminator accuracy, precision, recall and F1 from a known confusion matrix",
          "[trainer][electra]") {
  // 10 positions (+ 2 padding): tp 3, fp 1, fn 2, tn 4.
  const std::vector<float> logits = {2.0f, 0.5f, 1.0f, 3.0f, -1.0f, -0.1f, -2.0f, -3.0f, -0.5f, -4.0f, 5.0f, -5.0f};
  const std::vector<float> labels = {1, 1, 1, 0, 1, 1, 0, 0, 0, 0, 1, 0};
  const std::vector<float> weights = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
  const kt::BinaryCounts c = kt::count_predictions(logits, labels, weights);
  REQUIRE(c.tp == 3);
  REQUIRE(c.fp == 1);
  REQUIRE(c.fn == 2);
  REQUIRE(c.tn == 4);
  REQUIRE(c.accuracy() == Approx(0.7));
  REQUIRE(c.precision() == Approx(0.75));
  REQUIRE(c.recall() == Approx(0.6));
  REQUIRE(c.f1() == Approx(2 * 0.75 * 0.6 / (0.75 + 0.6)));
  // Nothing predicted positive: precision and F1 are 0, not NaN.
  const kt::BinaryCounts none = kt::count_predictions({-1.0f, -2.0f}, {1, 0}, {1, 1});
  REQUIRE(none.precision() == 0.0);
  REQUIRE(none.f1() == 0.0);
  REQUIRE(none.accuracy() == Approx(0.5));
  REQUIRE(kt::BinaryCounts{}.accuracy() == 0.0);

  kt::ElectraMetrics m;
  m.mlm_loss_sum = 6.0;
  m.masked = 4;
  m.mlm_correct = 1;
  m.rtd_loss_sum = 2.0;
  m.tokens = 10;
  m.disc = c;
  const Json j = m.to_json(50.0, "val_");
  REQUIRE(j["val_mlm_loss"].get<double>() == Approx(1.5));
  REQUIRE(j["val_mlm_acc"].get<double>() == Approx(0.25));
  REQUIRE(j["val_rtd_loss"].get<double>() == Approx(0.2));
  REQUIRE(j["val_loss"].get<double>() == Approx(1.5 + 50 * 0.2));
  REQUIRE(j["val_disc_precision"].get<double>() == Approx(0.75));
  REQUIRE(j["val_disc_f1"].get<double>() == Approx(c.f1()));
}

TEST_CASE("electra: a tiny pretraining run lowers the loss, the run loads back and eval reproduces validation",
          "[trainer][electra]") {
  const std::string run = fresh_dir("falls");
  const auto r = kt::train_electra(tiny_config(40), run, false, quiet());
  REQUIRE(r.steps == 40);
  REQUIRE(r.skipped_steps == 0);
  std::vector<double> losses;
  std::vector<Json> vals;
  for (const auto& row : read_metrics(run)) {
    if (row.contains("loss")) losses.push_back(row["loss"].get<double>());
    if (row.contains("val_loss")) vals.push_back(row);
  }
  REQUIRE(losses.size() == 8);
  REQUIRE(vals.size() == 2);
  INFO("first loss " << losses.front() << ", last " << losses.back() << "; val " << vals.front().dump() << " -> "
                     << vals.back().dump());
  REQUIRE(losses.back() < 0.8 * losses.front());
  REQUIRE(vals.back()["val_loss"].get<double>() < vals.front()["val_loss"].get<double>() + 1e-9);
  for (const char* k : {"val_mlm_loss", "val_mlm_acc", "val_rtd_loss", "val_disc_acc", "val_disc_precision",
                        "val_disc_recall", "val_disc_f1"})
    REQUIRE(vals.back().contains(k));
  for (const char* f : {"config.json", "vocab.txt", "metrics.jsonl", "checkpoints/latest"})
    REQUIRE(fs::exists(fs::path(run) / f));
  REQUIRE(knot::data::read_file_bytes((fs::path(run) / "vocab.txt").string()) ==
          knot::data::read_file_bytes(fixture("electra-vocab.txt")));
  // The resolved config: the complete Electra model config, with the tokenizer's vocabulary.
  const Json saved = knot::models::load_json_file((fs::path(run) / "config.json").string());
  REQUIRE(saved["task"] == "electra");
  REQUIRE(saved["model"]["model"] == "electra");
  REQUIRE(saved["model"]["vocab_size"] == 39);
  REQUIRE(saved["model"]["pad_token_id"] == 0);
  REQUIRE(saved["model"].contains("discriminator"));
  REQUIRE(saved["data"]["val"].is_null());
  REQUIRE(saved["electra"]["rtd_weight"] == 50.0);

  // Loaded back (what `knot eval` does): the validation metrics again, exactly.
  const auto loaded = kt::load_electra_run(run);
  REQUIRE(loaded.checkpoint == (fs::path(run) / "checkpoints/step-000040").string());
  REQUIRE_FALSE(loaded.model->is_training());
  const auto dc = kt::ElectraDataConfig::from_json(saved["data"]);
  const auto eo = kt::ElectraOptions::from_json(saved["electra"]);
  const auto v = kt::electra_vocab(*loaded.tokenizer);
  const auto corpus = kt::load_electra_corpus(dc, *loaded.tokenizer, v, false);
  const auto m = kt::evaluate_electra(*loaded.model, corpus.val, v, eo, dc.batch_size, 5);
  const Json j = m.to_json(eo.rtd_weight, "val_");
  for (auto& [k, x] : j.items()) {
    INFO(k);
    REQUIRE(x.get<double>() == Approx(vals.back()[k].get<double>()).epsilon(1e-9));
  }
  REQUIRE(m.disc.total() == m.tokens);
  REQUIRE(m.masked > 0);
  // A fresh run into a directory with checkpoints is refused before anything is written.
  REQUIRE_THROWS_WITH(kt::train_electra(tiny_config(40), run, false, quiet()), Catch::Contains("--resume"));
  fs::remove_all(run);
}

TEST_CASE("electra: a resumed run ends bit-identical to an uninterrupted one", "[trainer][electra]") {
  Json cfg = tiny_config(12);
  cfg["train"]["checkpoint_every"] = 4;
  cfg["train"]["val_every"] = 6;
  cfg["train"]["log_every"] = 2;
  const std::string a = fresh_dir("uninterrupted"), b = fresh_dir("resumed");
  kt::train_electra(cfg, a, false, quiet());
  auto hooks = quiet();
  hooks.stop_after_steps = 6;  // "killed" at step 6: the latest checkpoint is step 4
  kt::train_electra(cfg, b, false, hooks);
  REQUIRE(kt::latest_checkpoint(b) == (fs::path(b) / "checkpoints/step-000004").string());
  const Json saved = knot::models::load_json_file((fs::path(b) / "config.json").string());
  REQUIRE(kt::train_electra(saved, b, true, quiet()).steps == 12);
  const std::string fa = (fs::path(a) / "checkpoints/step-000012").string(),
                    fb = (fs::path(b) / "checkpoints/step-000012").string();
  REQUIRE(knot::data::read_file_bytes(fa + "/model.safetensors") ==
          knot::data::read_file_bytes(fb + "/model.safetensors"));
  REQUIRE(knot::data::read_file_bytes(fa + "/optimizer.safetensors") ==
          knot::data::read_file_bytes(fb + "/optimizer.safetensors"));
  const auto ma = timeless(read_metrics(a)), mb = timeless(read_metrics(b));
  REQUIRE(ma.size() == mb.size());
  for (size_t i = 0; i < ma.size(); ++i) REQUIRE(ma[i].dump() == mb[i].dump());
  for (const auto& d : {a, b}) fs::remove_all(d);
}

TEST_CASE("electra: config errors name the key", "[trainer][electra]") {
  const std::string run = fresh_dir("cfg");
  auto expect = [&](const Json& cfg, const std::string& key) {
    REQUIRE_THROWS_WITH(kt::train_electra(cfg, run, false, quiet()), Catch::Contains(key));
  };
  Json c = tiny_config(2);
  c["electra"]["mask_probability"] = 0.2;
  expect(c, "'mask_probability'");
  c = tiny_config(2);
  c["electra"]["mask_prob"] = 1.5;
  expect(c, "'mask_prob'");
  c = tiny_config(2);
  c["electra"]["temperature"] = 0.0;
  expect(c, "'temperature'");
  c = tiny_config(2);
  c["data"]["max_lenght"] = 64;
  expect(c, "'max_lenght'");
  c = tiny_config(2);
  c["data"]["train"] = 3;
  expect(c, "'train'");
  c = tiny_config(2);
  c["data"]["val"] = 3;
  expect(c, "'val'");
  c = tiny_config(2);
  c["data"]["val_fraction"] = 0.0;
  expect(c, "'val_fraction'");
  c = tiny_config(2);
  c["tokenizer"]["vocab_size"] = 100;
  expect(c, "'vocab_size'");
  c = tiny_config(2);
  c["model"]["discriminator"]["num_layer"] = 2;
  expect(c, "'num_layer'");
  c = tiny_config(2);
  c["model"]["model"] = "encoder_decoder";
  expect(c, "'model'");
  c = tiny_config(2);
  c["data"]["max_length"] = 64;  // the model has 32 positions
  expect(c, "max_position_embeddings");
  c = tiny_config(2);
  c["task"] = "bert";
  expect(c, "'task'");
  c = tiny_config(2);
  c["bogus"] = 1;
  expect(c, "'bogus'");
  c = tiny_config(2);
  c["data"]["train"] = Json::array({"/nonexistent/corpus.txt"});
  expect(c, "/nonexistent/corpus.txt");
  c = tiny_config(2);
  c["tokenizer"]["path"] = "/nonexistent/vocab.txt";
  expect(c, "/nonexistent/vocab.txt");
  REQUIRE_FALSE(fs::exists(fs::path(run) / "checkpoints"));
  fs::remove_all(run);
}

TEST_CASE("electra: a text line that is not valid UTF-8 is an error naming the file and line", "[trainer][electra]") {
  const std::string dir = knot::test::fresh_run_dir("electra", "utf8");
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/text.txt";
  std::ofstream(path, std::ios::binary) << "a fine line\nanother\r\nbroken \xC3\x28 here\nlast\n";
  REQUIRE_THROWS_WITH(knot::train::read_text_lines(path), Catch::Contains("text.txt:3") && Catch::Contains("UTF-8"));
  std::ofstream(path, std::ios::binary) << "a fine line\nanother\r\nlast\n";
  CHECK(knot::train::read_text_lines(path) == std::vector<std::string>{"a fine line", "another", "last"});
  std::filesystem::remove_all(dir);
}
