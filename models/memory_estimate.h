// Memory estimates from a config, before anything is built, so that an absurd size
// (model.num_encoder_layers=1000000, embedding_dim=30000, grid_size=1e9, max_length=1e9) is a clear
// error in milliseconds instead of a machine swapping until the job is killed.
//
//   parameters   counted analytically from the config, per module, exactly as the constructors
//                register them (a test checks the count against the built model's num_parameters()
//                for every shipped config); buffers (KAN grids, RBF centres, the sinusoidal
//                position tables) are counted apart
//   gradients    one per trainable parameter
//   optimizer    Adam/AdamW: two moments per parameter; L-BFGS (knot fit): 2 × history + 4 vectors
//   activations  a rough documented estimate ("~"): per token and block, the tensors attention and
//                the FFN keep for backward (12·d + 2·qk + 2·v + 3·ffn + 2·heads·T elements, plus
//                4·d + 2·qk + 2·v + 2·heads·S for cross-attention), 3·d for the embeddings and
//                3·vocab for the logits, at batch × max length tokens in f32; with activation
//                checkpointing only each block's input plus one block's activations. Intermediate
//                tensors of KAN bases built from primitive ops (all but B-splines) are not counted.
//                knot fit: 4·(in + out) values per row and layer, plus update_grid's f64 work
//                for B-splines (N·in + in·(G+k)·(G+k+out) values: the input, the refit matrices,
//                the new weight).
// Every product and sum is overflow-checked: a count past 2^64 saturates and is reported as such.
//
// check_memory compares the total with the memory available to this process: MemAvailable in
// /proc/meminfo, and the cgroup's memory.max minus memory.current when a limit is set (v1:
// memory.limit_in_bytes), and refuses above it with an error that prints the estimate; the override
// key (train.memory_check=false) skips the check.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "models/config.h"

namespace knot::models {

struct MemoryEstimate {
  std::string model;                 // "encoder_decoder", "electra", "kan"
  uint64_t parameters = 0;           // trainable elements: the built model's num_parameters()
  uint64_t parameter_bytes = 0;      // trainable parameters
  uint64_t buffer_bytes = 0;         // buffers and frozen parameters
  uint64_t gradient_bytes = 0;
  uint64_t optimizer_bytes = 0;
  std::string optimizer = "Adam";    // "Adam", "L-BFGS"
  uint64_t activation_bytes = 0;
  std::string workload;              // "batch 32 × 24 tokens", "1000 rows"
  std::vector<std::string> size_keys;        // keys that set the parameter count, for the hint
  std::vector<std::string> activation_keys;  // keys that set the activations
  bool overflow = false;             // some count passed 2^64 - 1 (and saturated there)

  uint64_t total() const;  // saturating sum
  // "37.2 GiB (parameters 9.1 GiB, gradients + Adam 27.3 GiB, buffers 1.0 MiB, activations ~0.8 GiB
  // at batch 32 × 24 tokens)"; "more than 16.0 EiB (...)" after an overflow.
  std::string summary() const;
};

// Where the training batches come from: batch size and the longest sequence (source and target
// alike for translation). `classify`: ELECTRA fine-tuning (the discriminator and the classifier
// run, the generator does not).
struct TrainingShape {
  int64_t batch_size = 32;
  int64_t seq_len = 32;
  bool classify = false;
};

// A model config as build_model takes it ("model": "encoder_decoder" or "electra", every key
// checked by the model's config reader), trained with Adam. Allocates nothing.
MemoryEstimate estimate_model_memory(const Json& model_cfg, const TrainingShape& shape);

// The model config inside a config file, ready for build_model and estimate_model_memory: a model
// config (configs/kanformer-*.json, configs/electra-*.json) as it is; a training config's "model"
// object completed as the trainers complete it ("model" kind; for translation the vocabulary sizes
// from tokenizer.vocab_size, an upper bound of the trained BPE's size, and max_length). `shape`
// receives data.batch_size and data.max_length (defaults: 32 × 32, ELECTRA 32 × 128). A sentiment
// config's model (a patch over the pretraining run's) is taken over ELECTRA's defaults. Not for
// knot fit configs (task "fit").
Json resolve_model_config(const Json& cfg, TrainingShape* shape);

// knot fit's KAN stack (nn::KAN: widths, basis, options) trained on `rows` rows per step.
struct FitShape {
  int64_t rows = 1000;
  std::string optimizer = "lbfgs";  // or "adam"
  int64_t lbfgs_history = 10;
  bool grid_updates = true;
};
MemoryEstimate estimate_kan_memory(const std::vector<int64_t>& widths, const std::string& basis, const Json& options,
                                   const FitShape& shape);

// Parameters (trainable) and buffer bytes of one projection ("mlp" or "kan_<basis>") or KAN layer.
struct ParameterCount {
  uint64_t parameters = 0, parameter_bytes = 0, buffer_bytes = 0;
  bool overflow = false;
};
ParameterCount count_kan_layer(const std::string& basis, int64_t in, int64_t out, const Json& options);

struct AvailableMemory {
  uint64_t bytes = 0;
  std::string source;  // "MemAvailable in /proc/meminfo", "cgroup memory.max 8.0 GiB, 2.1 GiB in use"
};
AvailableMemory available_memory();

// Throws when the estimate exceeds `avail` (or overflowed): the error prints the estimate, what is
// available, the keys to lower and `override_key` ("train.memory_check=false").
void check_memory(const MemoryEstimate& e, const AvailableMemory& avail, const std::string& override_key);

// `model_cfg` with every B-spline projection spec (an object {"kind": "kan_bspline", ...} or the string
// "kan_bspline") at grid size `grid_size`: the model as train.kan_grid_extend leaves it.
Json with_kan_grid_size(const Json& model_cfg, int64_t grid_size);

// For the trainers: reads train.memory_check from `train_cfg` (a bool, default true) and, when on,
// checks estimate_model_memory(model_cfg, shape) against available_memory().
void check_training_memory(const Json& model_cfg, const Json& train_cfg, const TrainingShape& shape);

}  // namespace knot::models
