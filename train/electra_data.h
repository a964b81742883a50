// ELECTRA pretraining's data, masking, sampling, losses and metrics (the task itself and its config:
// train/electra_pretrain.h).
//
// Data: text files, one sentence or paragraph per line (data/corpus/*.txt from `knot data corpus`).
// Lines are WordPiece-encoded and consecutive lines packed into [CLS] tokens... [SEP] sequences of
// at most data.max_length ids; a line longer than max_length - 2 tokens is cut, and an empty line
// or the end of a file ends a sequence. With data.val = null the last ceil(val_fraction · lines)
// lines of each training file are held out for validation (at most lines - 1).
// Batches: the training sequences are shuffled (Fisher–Yates with Philox, a pure function of
// (seed, epoch)) and cut into batches of batch_size (the last one may be smaller), padded with [PAD]
// to the longest sequence of the batch.
//
// Masking (mask_batch, a pure function of (seed, epoch, sequence index, position)): each
// non-special token (not [PAD] [UNK] [CLS] [SEP] [MASK] [unusedN]) is chosen with probability
// mask_prob, at least one per sequence that has a candidate; a chosen token becomes [MASK] (80 %),
// a uniformly random non-special token (10 %) or stays (10 %) in the generator's input.
// Generator: MLM cross-entropy at the chosen positions only (the vocabulary logits are computed
// only there). Sampling, under NoGradGuard: one token per chosen position from
// softmax(generator logits / temperature) by inverse CDF with a Philox uniform; the discriminator
// input is the original text with the samples at the chosen positions. No gradient flows through
// the sample, so the RTD term reaches the discriminator and the shared embeddings, never the
// generator's own layers. Labels: 1 where the discriminator input differs from the original (a
// sample equal to the original counts as original), over the non-[PAD] positions ([CLS] and [SEP]
// included, always 0). RTD loss: binary cross-entropy with logits, softplus(x) − y·x, averaged
// over the non-pad positions. Loss = MLM + rtd_weight · RTD (the paper's λ = 50).
// Initialisation: the word, position and token-type embeddings are redrawn from
// N(0, initializer_range²) with the [PAD] row zero, as BERT and ELECTRA initialise them. The
// nn::Embedding default, N(0, 1), makes the tied generator output start with logits of standard
// deviation ≈ √embedding_size: an MLM loss near 20 instead of ln V ≈ 10.3, which a short run does
// not recover from (measured: 0 % MLM accuracy after 300 steps of the tiny config).
// Validation: the same masking and sampling with a fixed draw (the same every call, independent of
// the epoch), over the first data.max_val_sequences validation sequences.
//
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/wordpiece.h"
#include "models/config.h"
#include "models/electra.h"
#include "core/tensor.h"

namespace knot::train {

// ---- configuration ------------------------------------------------------------------------------

struct ElectraDataConfig {
  std::vector<std::string> train = {"data/corpus/kjv.txt", "data/corpus/sotu.txt"};
  std::string val;  // "" = hold out val_fraction of each training file
  double val_fraction = 0.01;
  std::string test;  // "" = none (eval --split test then uses the validation split)
  int64_t max_length = 128, batch_size = 32, max_train_lines = 0, max_val_sequences = 200;

  static ElectraDataConfig from_json(const models::Json& j);  // the "data" object
  models::Json to_json() const;
};

struct ElectraOptions {
  double mask_prob = 0.15;
  double rtd_weight = 50.0;
  double temperature = 1.0;
  double initializer_range = 0.02;  // > 0: the embedding tables start from N(0, range²); 0 = as built

  static ElectraOptions from_json(const models::Json& j);  // the "electra" object
  models::Json to_json() const;
};

// ---- data ---------------------------------------------------------------------------------------

// The vocabulary as masking sees it.
struct ElectraVocab {
  int32_t pad = -1, cls = -1, sep = -1, mask = -1;
  std::vector<uint8_t> special;      // (vocab_size): 1 for [PAD] [UNK] [CLS] [SEP] [MASK] [unusedN]
  std::vector<int32_t> random_pool;  // the non-special ids, which "random token" draws from
};
// Needs [PAD], [CLS], [SEP] and [MASK] (an error naming the missing ones).
ElectraVocab electra_vocab(const data::Tokenizer& tok);

// The lines of a text file ('\n' separated, a trailing '\r' dropped); an error naming the file
// when it is missing, and the file and line of a line that is not valid UTF-8.
std::vector<std::string> read_text_lines(const std::string& path);

// [CLS] ... [SEP] sequences of at most max_length ids from consecutive encoded lines (see the top
// of this file); an empty line ends a sequence. *cut_lines counts the lines that were cut.
std::vector<std::vector<int32_t>> pack_sequences(const std::vector<std::vector<int32_t>>& lines, const ElectraVocab& v,
                                                 int64_t max_length, int64_t* cut_lines = nullptr);

// The sequences of lines [begin, end) of one file.
std::vector<std::vector<int32_t>> encode_and_pack(const std::vector<std::string>& lines, size_t begin, size_t end,
                                                  const data::Tokenizer& tok, const ElectraVocab& v, int64_t max_length,
                                                  int64_t* cut_lines = nullptr);

struct ElectraCorpus {
  std::vector<std::vector<int32_t>> train, val;  // val: every validation sequence (not yet capped)
  int64_t train_lines = 0, val_lines = 0, cut_lines = 0;
  std::string val_source;  // the val file, or "held out of <files>"
};
// The training and validation sequences a config describes (with_train = false reads the training
// files only when the validation lines are held out of them).
ElectraCorpus load_electra_corpus(const ElectraDataConfig& dc, const data::Tokenizer& tok, const ElectraVocab& v,
                                  bool with_train = true);

// ---- masking, sampling, losses ------------------------------------------------------------------

// Redraws the three embedding tables from N(0, std²) ([PAD] row 0) from the default generator;
// std <= 0 does nothing.
void init_electra_embeddings(models::Electra& model, double std);

// Philox keys of one run, derived from its seed: batch order, masking and generator sampling draw
// from independent streams.
struct ElectraKeys {
  uint64_t data = 0, mask = 0, sample = 0;
  explicit ElectraKeys(uint64_t seed);
};
// The draw of validation and eval (training uses the epoch).
inline constexpr uint64_t kElectraEvalDraw = 0xE7A1'0000'0000'0000ull;

enum class Corruption : uint8_t { mask = 0, random = 1, keep = 2 };

struct MaskedBatch {
  int64_t batch = 0, length = 0;       // B, T
  std::vector<int64_t> original;       // (B·T) ids, [PAD] after each sequence
  std::vector<int64_t> input;          // (B·T) the generator's input (80/10/10 at the chosen positions)
  std::vector<int64_t> positions;      // (M) flat indices b·T + t of the chosen positions, ascending
  std::vector<Corruption> corruption;  // (M) what each chosen position got
  std::vector<uint64_t> elements;      // (M) Philox element of each chosen position: sequence index << 32 | t
  int64_t tokens = 0;                  // non-pad tokens
};
// Masks sequences seqs[idx[0]], seqs[idx[1]], ... as one batch. The random numbers of position t
// of sequence i are Philox element (i << 32 | t) of (key, draw): the mask of a sequence depends on
// (key, draw, i) only, not on its batch. The batch is padded to its longest sequence and to at least
// min_length (a data-parallel rank pads its part to the whole batch's length).
MaskedBatch mask_batch(const std::vector<std::vector<int32_t>>& seqs, const std::vector<int64_t>& idx,
                       const ElectraVocab& v, double mask_prob, uint64_t key, uint64_t draw, size_t min_length = 1);

// Generator MLM logits at some positions only: ids (B, T), positions (M) flat indices b·T + t ->
// (M, vocab_size); equal to Electra::generator_logits(ids) at those positions.
Tensor generator_logits_at(const models::Electra& model, const Tensor& ids, const Tensor& positions);

// One token per row of logits (M, V) from softmax(logits / temperature), by inverse CDF with the
// uniform of Philox element elements[r] of (key, draw). Not differentiable.
std::vector<int64_t> sample_tokens(const Tensor& logits, double temperature, uint64_t key, uint64_t draw,
                                   const std::vector<uint64_t>& elements);

struct ElectraOutputs {
  Tensor loss, mlm_loss, rtd_loss;  // scalars; loss = mlm_loss + rtd_weight · rtd_loss
  Tensor gen_logits;                // (M, V) at the chosen positions (undefined when M = 0)
  Tensor disc_logits;               // (B, T)
  std::vector<int64_t> replaced;    // (B·T) the discriminator's input
  std::vector<float> labels;        // (B·T) 1 = replaced
  std::vector<float> weights;       // (B·T) 1 = not [PAD]
};
// The whole ELECTRA step of one masked batch (model in train or eval mode, as the caller set it).
// With `whole_batch` (a data-parallel rank's part of a batch), the two losses are this part's sums
// over the whole batch's counts: Σ MLM losses / whole_batch->masked positions and Σ RTD losses /
// whole_batch->tokens, so the ranks' losses add up to the whole batch's.
struct ElectraBatchCounts {
  int64_t masked = 0, tokens = 0;
};
ElectraOutputs electra_forward(const models::Electra& model, const MaskedBatch& mb, const ElectraOptions& o,
                               uint64_t sample_key, uint64_t draw, const ElectraBatchCounts* whole_batch = nullptr);

// ---- metrics ------------------------------------------------------------------------------------

// A binary confusion matrix; the positive class is "replaced". Ratios with a zero denominator are 0.
struct BinaryCounts {
  int64_t tp = 0, fp = 0, tn = 0, fn = 0;
  void add(bool predicted, bool actual);
  int64_t total() const { return tp + fp + tn + fn; }
  double accuracy() const;
  double precision() const;
  double recall() const;
  double f1() const;
};
// Counts over the positions of weight != 0; predicted positive = logit > 0.
BinaryCounts count_predictions(const std::vector<float>& logits, const std::vector<float>& labels,
                               const std::vector<float>& weights);

struct ElectraMetrics {
  double mlm_loss_sum = 0, rtd_loss_sum = 0;
  int64_t masked = 0, mlm_correct = 0, tokens = 0, sequences = 0;
  BinaryCounts disc;
  double mlm_loss() const { return masked > 0 ? mlm_loss_sum / static_cast<double>(masked) : 0.0; }
  double mlm_accuracy() const {
    return masked > 0 ? static_cast<double>(mlm_correct) / static_cast<double>(masked) : 0.0;
  }
  double rtd_loss() const { return tokens > 0 ? rtd_loss_sum / static_cast<double>(tokens) : 0.0; }
  // {prefix}loss, {prefix}mlm_loss, {prefix}mlm_acc, {prefix}rtd_loss, {prefix}disc_acc,
  // {prefix}disc_precision, {prefix}disc_recall, {prefix}disc_f1
  models::Json to_json(double rtd_weight, const std::string& prefix = "val_") const;
};
// Metrics over sequences with the fixed eval masking (kElectraEvalDraw); no graph. The model's
// train/eval mode is left as it is (validate() and eval use eval mode).
ElectraMetrics evaluate_electra(const models::Electra& model, const std::vector<std::vector<int32_t>>& seqs,
                                const ElectraVocab& v, const ElectraOptions& o, int64_t batch_size, uint64_t seed);

}  // namespace knot::train
