// The translation task: EN→DE (or any {"<src>": ..., "<tgt>": ...} JSON Lines pairs, e.g. the
// data/ende files written by `knot data ende`, or Multi30k's files) with the kanformer model.
//
// Tokenizer: one BPE (data/bpe.h) shared by source and target, trained on both sides of the
// training split; kanformer's specials <sos>=0, <eos>=1, <unk>=2, <pad>=3. A shared vocabulary
// is the simplest choice that works for EN/DE (many names, numbers and cognates are shared), and
// it keeps one tokenizer.json in the run directory. It is saved as RUN/tokenizer.json.
// Examples: src = x (no specials), decoder input = <sos> y, target = y <eos>; pairs whose source
// or target (with the added special) exceed data.max_length tokens are left out.
// Batches: the examples are shuffled (a pure function of the seed and the epoch), cut into chunks
// of batch_size · bucket_batches, sorted by length inside each chunk, cut into batches, and the
// batches shuffled; padding with <pad>. Loss: cross_entropy over target tokens, <pad> ignored,
// with label smoothing.
//
// Config (top level; unknown keys are errors naming the key):
//   {"task": "translation", "seed": 1, "run_dir": "runs/x", "description": "...",
//    "data": {"train": "data/ende/train.jsonl", "val": "data/ende/val.jsonl", "test": "data/ende/test.jsonl",
//             "src_lang": "en", "tgt_lang": "de", "src_key": "" (= src_lang), "tgt_key": "" (= tgt_lang),
//             "max_length": 32, "batch_size": 32, "bucket_batches": 50,
//             "max_train_examples": 0 (0 = all), "max_val_examples": 0},
//    "tokenizer": {"vocab_size": 4000, "min_frequency": 2, "lowercase": false},
//    "translation": {"label_smoothing": 0.1, "val_bleu_examples": 0, "decode_max_length": 64},
//    "model": {...encoder_decoder keys; vocab sizes and pad ids are filled in from the tokenizer...},
//    "train": {...train/trainer.h...},
//    "eval": {"beam": 1, "length_penalty": 0.6, "batch_size": 64, "samples": 5}}
// The run directory gets config.json (resolved), tokenizer.json, metrics.jsonl, checkpoints/.
// KAN projections: train.kan_grid_update_every adapts their grids during training and
// train.kan_regularization adds their penalty (train/trainer.h).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "models/config.h"
#include "models/encoder_decoder.h"
#include "train/decode.h"
#include "train/trainer.h"

namespace knot::train {

struct TranslationPair {
  std::string src_text, tgt_text;
  std::vector<int64_t> src, tgt;  // token ids without specials
};

// The JSON keys of the source and target texts in the data files: data.src_key / data.tgt_key, by
// default the language codes data.src_lang / data.tgt_lang ("en", "de"), so {"en": ..., "de": ...}
// files need neither and a file of {"source": ..., "target": ...} sets the two keys.
std::pair<std::string, std::string> translation_keys(const models::Json& data);
// Reads {"<src key>": ..., "<tgt key>": ...} lines; errors name the file, line and key.
std::vector<TranslationPair> read_translation_pairs(const std::string& path, const std::string& src_lang,
                                                    const std::string& tgt_lang, int64_t max_examples = 0);
void encode_pairs(std::vector<TranslationPair>& pairs, const data::Tokenizer& tok);
SpecialTokens special_tokens(const data::Tokenizer& tok);

// Teacher-forced loss over pairs (eval mode, no graph, no label smoothing): sum of token losses
// and the number of target tokens.
struct LossSum {
  double sum = 0;
  int64_t tokens = 0;
  double mean() const { return tokens > 0 ? sum / static_cast<double>(tokens) : 0.0; }
};
LossSum teacher_forced_loss(const models::EncoderDecoderTransformer& model, const std::vector<TranslationPair>& pairs,
                            const SpecialTokens& sp, int64_t batch_size);

struct DecodeSettings {
  std::string method = "greedy";  // greedy | beam | sample
  int64_t beam = 1;
  double length_penalty = 0.6;
  SampleOptions sample;
  uint64_t seed = 0;
  int64_t max_length = 64;
  int64_t batch_size = 64;  // sources per batch (greedy and beam; beam runs batch_size x beam rows)
};
// The "eval" object of a translation config: knot eval's defaults for the run, read (and checked)
// by the trainer before it starts and by knot eval, which its flags override.
struct EvalDefaults {
  int64_t beam = 1;             // 1 = greedy
  double length_penalty = 0.6;  // GNMT alpha of beam search
  int64_t batch_size = 64;      // sentences per batch (loss and decoding)
  int64_t samples = 5;          // sample translations printed
};
EvalDefaults read_eval_defaults(config::Reader& r);

// Translations (token ids) of already-encoded sources, in order.
std::vector<std::vector<int64_t>> translate_ids(const models::EncoderDecoderTransformer& model,
                                                const std::vector<std::vector<int64_t>>& srcs,
                                                const SpecialTokens& sp, const DecodeSettings& s);

// A trained run, for translate and eval: the resolved config, tokenizer and the latest checkpoint's
// weights (model in eval mode).
struct TranslationRun {
  std::string run_dir, checkpoint;
  models::Json config;
  std::unique_ptr<data::Tokenizer> tokenizer;
  std::shared_ptr<models::EncoderDecoderTransformer> model;
};
TranslationRun load_translation_run(const std::string& run_dir);

// The one policy of `knot eval` and `knot translate` for a sentence longer than the model takes
// (its positional table holds max_length positions; one goes to <sos>/<eos>): it is cut to
// max_length - 1 tokens, with a warning on stderr that names it ("{where} line {line}: ..."), so
// no sentence is lost and no batch fails for one long line. Returns whether it cut.
bool cut_to_model_length(std::vector<int64_t>& ids, const models::EncoderDecoderTransformer& model,
                         const std::string& where, size_t line);

// `knot train` for task "translation". cfg: the config after overrides; run_dir "" = cfg's.
// With resume, cfg must be run_dir's config.json (plus any overrides).
TrainResult train_translation(const models::Json& cfg, const std::string& run_dir, bool resume,
                              const TrainerHooks& hooks = {});

}  // namespace knot::train
