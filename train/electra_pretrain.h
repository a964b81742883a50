// ELECTRA pretraining (Clark et al. 2020, "ELECTRA: Pre-training Text Encoders as Discriminators
// Rather Than Generators", §2): a small generator learns masked-LM on [MASK]ed text; tokens sampled
// from it replace the masked ones, and the discriminator learns to tell, for every token of the
// corrupted text, whether it is the original or a replacement (replaced-token detection, RTD).
// One model (models/electra.h: shared embeddings, tied generator output), one optimiser.
//
// Data, masking, sampling, losses and metrics: train/electra_data.h (the recipe is described there).
//
// Config (top level; unknown keys are errors naming the key; every key: knot config --schema electra):
//   {"task": "electra", "seed": 1, "run_dir": "runs/electra", "description": "...",
//    "data": {"train": ["data/corpus/kjv.txt", "data/corpus/sotu.txt"] (or one path), "val": null (or a path),
//             "val_fraction": 0.01, "test": null (or a path; `knot eval --split test`),
//             "max_length": 128, "batch_size": 32, "max_train_lines": 0 (0 = all),
//             "max_val_sequences": 200 (0 = all)},
//    "tokenizer": {"path": "data/vocab/vocab.txt"},  BERT's uncased WordPiece vocabulary
//    "electra": {"mask_prob": 0.15, "rtd_weight": 50.0, "temperature": 1.0, "initializer_range": 0.02},
//    "model": {...ElectraConfig (models/electra.h); vocab_size and pad_token_id are filled in from
//              the tokenizer, "model": "electra" may be left out...},
//    "train": {...train/trainer.h...}}
// The run directory gets config.json (resolved: every data/electra key, and "model" the complete
// ElectraConfig JSON), vocab.txt (the tokenizer's vocabulary), metrics.jsonl and checkpoints/
// (train/checkpoint.h). A resumed run reads RUN/vocab.txt.
#pragma once

#include <string>
#include <vector>

#include "train/electra_data.h"
#include "train/trainer.h"

namespace knot::train {

// ---- runs ---------------------------------------------------------------------------------------

// A trained run, for eval (and fine-tuning): the resolved config, the WordPiece tokenizer of
// RUN/vocab.txt and the latest checkpoint's weights (model in eval mode). `tasks`: the run tasks
// accepted ("electra" pretraining; a fine-tuning run, e.g. "sentiment", has the same layout).
struct ElectraRun {
  std::string run_dir, checkpoint;
  models::Json config;
  std::unique_ptr<data::WordPieceTokenizer> tokenizer;
  std::shared_ptr<models::Electra> model;
};
ElectraRun load_electra_run(const std::string& run_dir, const std::vector<std::string>& tasks = {"electra"});

// `knot train` for task "electra". cfg: the config after overrides; run_dir "" = cfg's.
// With resume, cfg must be run_dir's config.json (plus any overrides).
TrainResult train_electra(const models::Json& cfg, const std::string& run_dir, bool resume,
                          const TrainerHooks& hooks = {});

}  // namespace knot::train
