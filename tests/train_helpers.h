// Shared helpers of the training tests (test_train_loop, test_train_electra, test_train_finetune):
// fixture paths, fresh temporary run directories, a silent trainer, metrics.jsonl readers.
#pragma once

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "data/jsonl.h"
#include "models/config.h"
#include "train/trainer.h"

namespace knot::test {

// tests/fixtures/train/<name>
inline std::string train_fixture(const std::string& name) {
  return (std::filesystem::path(__FILE__).parent_path() / "fixtures" / "train" / name).string();
}

// An empty (removed) directory path in the temp dir, unique per test process: knot-test-<group>-<name>-<pid>.
inline std::string fresh_run_dir(const std::string& group, const std::string& name) {
  const std::filesystem::path p =
      std::filesystem::temp_directory_path() / fmt::format("knot-test-{}-{}-{}", group, name, ::getpid());
  std::filesystem::remove_all(p);
  return p.string();
}

// The tiny translation config on tests/fixtures/train (1+1 layers, d = 32, MLP projections, one
// thread, no progress line): a run of a few steps takes well under a second.
inline models::Json tiny_translation_config(int64_t steps = 2) {
  return models::Json{{"task", "translation"},
                      {"seed", 3},
                      {"data",
                       {{"train", train_fixture("tiny-train.jsonl")},
                        {"val", train_fixture("tiny-val.jsonl")},
                        {"max_length", 24},
                        {"batch_size", 16},
                        {"bucket_batches", 4}}},
                      {"tokenizer", {{"vocab_size", 200}, {"min_frequency", 2}}},
                      {"model",
                       {{"num_encoder_layers", 1},
                        {"num_decoder_layers", 1},
                        {"embedding_dim", 32},
                        {"num_heads", 2},
                        {"ffn_hidden_dim", 48},
                        {"max_length", 32}}},
                      {"train",
                       {{"steps", steps}, {"log_every", 1}, {"val_every", 2}, {"threads", 1}, {"progress", false}}}};
}

// Trainer hooks that drop the log messages.
inline train::TrainerHooks quiet_hooks() {
  train::TrainerHooks h;
  h.log = [](const std::string&) {};
  return h;
}

inline std::vector<models::Json> read_metrics(const std::string& run) {
  return data::read_jsonl((std::filesystem::path(run) / "metrics.jsonl").string());
}

// Metrics without the wall-clock fields (what must be identical between two runs).
inline std::vector<models::Json> timeless(std::vector<models::Json> rows) {
  for (auto& r : rows) {
    r.erase("tokens_per_s");
    r.erase("elapsed_s");
  }
  return rows;
}

}  // namespace knot::test
