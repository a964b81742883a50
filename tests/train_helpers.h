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

// The "train" block of the tiny ELECTRA and fine-tuning configs: a linear warm-up, AdamW with weight
// decay, clipping, logs every 5 steps, validation and checkpoints every 20, one thread, no progress line.
inline models::Json tiny_train_block(int64_t steps, double lr, int64_t warmup_steps) {
  return models::Json{{"steps", steps},
                      {"lr", lr},
                      {"schedule", {{"kind", "linear"}, {"warmup_steps", warmup_steps}}},
                      {"optimizer", {{"weight_decay", 0.01}}},
                      {"clip_grad_norm", 1.0},
                      {"log_every", 5},
                      {"val_every", 20},
                      {"checkpoint_every", 20},
                      {"keep_checkpoints", 2},
                      {"threads", 1},
                      {"progress", false}};
}

// The tiny ELECTRA config on tests/fixtures/train (generator d = 16 x 1 layer, discriminator d = 32 x 2
// layers, MLP projections, one thread, no progress line).
inline models::Json tiny_electra_config(int64_t steps) {
  return models::Json{
      {"task", "electra"},
      {"seed", 5},
      {"data",
       {{"train", models::Json::array({train_fixture("electra-text.txt")})},
        {"val", nullptr},
        {"val_fraction", 0.1},
        {"max_length", 32},
        {"batch_size", 16},
        {"max_val_sequences", 0}}},
      {"tokenizer", {{"path", train_fixture("electra-vocab.txt")}}},
      {"electra", {{"mask_prob", 0.15}, {"rtd_weight", 50.0}, {"temperature", 1.0}}},
      {"model",
       {{"embedding_size", 16},
        {"max_position_embeddings", 32},
        {"hidden_dropout", 0.1},
        {"attention_dropout", 0.1},
        {"generator", {{"hidden_size", 16}, {"num_layers", 1}, {"num_heads", 1}, {"intermediate_size", 32}}},
        {"discriminator", {{"hidden_size", 32}, {"num_layers", 2}, {"num_heads", 2}, {"intermediate_size", 64}}}}},
      {"train", tiny_train_block(steps, 3e-3, 4)}};
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
