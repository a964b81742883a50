// The `lm` task: next-token prediction on any text with the decoder-only model
// (models/decoder_only.h), and generation from a trained run.
//
// Data: data.train (default data/corpus/all.txt, the KJV + State of the Union corpus of
// `knot data corpus`) and data.val: plain text (one document per line) or JSON Lines with a string
// field data.text_key ("text") per line; data.format "auto" picks JSONL for *.jsonl/*.json files.
// Without data.val, the last data.val_fraction of the training lines are held out. Invalid UTF-8, a
// malformed JSONL line or a line without the text field is an error naming the file and line.
// Tokenizer: a BPE (data/bpe.h) trained on the training lines (tokenizer.vocab_size, default the
// model's vocab_size, else 8000; min_frequency; lowercase), or tokenizer.path (a tokenizer.json, or a
// BERT vocab.txt) used as it is; the model's vocab_size becomes the tokenizer's.
// Packing: every line's ids followed by <eos> (the document separator; [SEP] for WordPiece) form
// one stream; blocks of data.block_size + 1 ids start every block_size ids (inputs are the first
// block_size ids, targets the next-token shift). An epoch is the blocks in a shuffled order (a pure
// function of seed and epoch), cut into batches of data.batch_size. Loss: mean cross-entropy over
// every target token. Validation: loss and perplexity over the held-out blocks in order.
// Mixture of experts (model.moe): the training step adds every block's weighted auxiliary loss
// (nn/moe.h) to the cross-entropy (the logged loss is the cross-entropy alone), and each
// metrics.jsonl row gets moe_load (tokens per expert per layer over the row's micro-batches),
// moe_dropped (choices dropped for capacity), moe_balance_loss and moe_z_loss (unweighted means).
//
// Config (top level; unknown keys are errors naming the key):
//   {"task": "lm", "seed": 1, "run_dir": "runs/lm", "description": "...",
//    "data": {"train": "data/corpus/all.txt", "val": "", "val_fraction": 0.01, "format": "auto",
//             "text_key": "text", "block_size": 128, "batch_size": 16, "max_train_lines": 0 (0 = all),
//             "max_val_blocks": 0 (0 = all)},
//    "tokenizer": {"vocab_size": 8000, "min_frequency": 2, "lowercase": false, "path": ""},
//    "model": {...decoder_only keys; vocab_size is filled in from the tokenizer...},
//    "train": {...train/trainer.h...},
//    "generate": {"max_new_tokens": 64, "temperature": 1.0, "top_k": 0, "top_p": 1.0}}
// The run directory gets config.json (resolved), tokenizer.json (vocab.txt for a WordPiece
// tokenizer.path), metrics.jsonl, checkpoints/.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "models/config.h"
#include "models/decoder_only.h"
#include "train/decode.h"
#include "train/trainer.h"

namespace knot::train {

// The documents of a text or JSONL file (see the top of this file). format: auto | text | jsonl.
// Empty lines of a text file are skipped; max_lines > 0 stops after that many documents.
std::vector<std::string> read_lm_documents(const std::string& path, const std::string& format,
                                           const std::string& text_key, int64_t max_lines = 0);

// The "data" object (every key checked, errors naming the key).
struct LmDataConfig {
  std::string train = "data/corpus/all.txt", val, format = "auto", text_key = "text";
  double val_fraction = 0.01;
  int64_t block_size = 128, batch_size = 16, max_train_lines = 0, max_val_blocks = 0;
  static LmDataConfig from_json(const models::Json& j);
};
// The training and validation documents: data.val, or the last val_fraction of the training lines.
struct LmDocuments {
  std::vector<std::string> train, val;
  std::string val_source;  // the file, or "the last N lines of FILE"
};
LmDocuments read_lm_data(const LmDataConfig& c);

// Every document's ids followed by `separator`, as one stream.
std::vector<int32_t> pack_token_stream(const std::vector<std::string>& docs, const data::Tokenizer& tok,
                                       int32_t separator);

// The number of blocks of block_size + 1 ids, starting every block_size ids, in a stream of n ids.
int64_t lm_block_count(int64_t n, int64_t block_size);

// The id that ends a document: <eos> of a BPE, [SEP] of a WordPiece (an error when there is none).
int32_t document_separator(const data::Tokenizer& tok);

// Mean next-token loss (nats) and perplexity of `stream` under the model (which must be in eval
// mode; no graph).
struct LmLoss {
  double loss = 0, perplexity = 0;
  int64_t tokens = 0, blocks = 0;
};
LmLoss lm_stream_loss(const models::DecoderOnlyTransformer& model, const std::vector<int32_t>& stream,
                      int64_t block_size, int64_t batch_size, int64_t max_blocks = 0);

struct GenerateOptions {
  int64_t max_new_tokens = 64;
  bool greedy = false;      // argmax (the other sampling options are ignored)
  SampleOptions sample;     // temperature, top_k, top_p
  uint64_t seed = 0;
  bool use_cache = true;    // false: every step runs the model over the whole prefix (for tests, benchmarks)
  int32_t stop_id = -1;     // generation ends at this id (not included); -1: only at max_new_tokens
};
// The "generate" object of an lm config: knot generate's defaults for the run (its flags override
// them), read and checked by the trainer before it starts and by knot generate.
GenerateOptions read_generate_defaults(config::Reader& r);

struct Generation {
  std::vector<int64_t> ids;  // the new ids only
  bool stopped = false;      // ended at stop_id
  bool context_full = false; // ended because the model's max_length positions were used
  int64_t prompt_tokens = 0; // after any cut
};
// Continues `prompt` (ids; the caller adds any start token) with the model in eval mode. A prompt longer than max_length − 1
// keeps its last max_length − 1 ids (a warning on stderr).
Generation generate_ids(const models::DecoderOnlyTransformer& model, std::vector<int64_t> prompt,
                        const GenerateOptions& opt);

// A trained `lm` run: the resolved config, tokenizer and latest checkpoint (model in eval mode).
struct LmRun {
  std::string run_dir, checkpoint;
  models::Json config;
  std::unique_ptr<data::Tokenizer> tokenizer;
  std::shared_ptr<models::DecoderOnlyTransformer> model;
};
LmRun load_lm_run(const std::string& run_dir);

// The prompt's ids as generation takes them: the document separator first (what every training
// document follows), then the text's ids.
std::vector<int64_t> lm_prompt_ids(const data::Tokenizer& tok, const std::string& text);

// `knot train` for task "lm". cfg: the config after overrides; run_dir "" = cfg's.
TrainResult train_language_model(const models::Json& cfg, const std::string& run_dir, bool resume,
                                 const TrainerHooks& hooks = {});

}  // namespace knot::train
