// Training checkpoints: a directory per step, written so that killing the process at any moment
// never leaves a broken `latest`.
//
//   RUN/checkpoints/step-000120/model.safetensors      the model's state_dict (PyTorch names)
//                              /optimizer.safetensors  Adam moments "<group>.<i>.exp_avg[_sq]"
//                              /trainer_state.json     step, epoch, data position, RNG states,
//                                                      optimizer step count, best metric, ...
//   RUN/checkpoints/latest                             one line: "step-000120"
//
// Write protocol: every file goes into RUN/checkpoints/.tmp-step-000120-<pid>/ (each file written,
// fsynced and closed), the temp directory is fsynced and renamed to step-000120, the parent
// directory is fsynced, and only then `latest` is replaced atomically (temp file, fsync, rename).
// A crash before the last rename leaves the previous `latest` intact; stale .tmp-* directories are
// removed by the next save, and a save that fails (a full disk) removes its own temp directory.
// Only the newest keep_last step directories are kept (never the one `latest` names). A model
// holding NaN/Inf weights is never written.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "models/config.h"
#include "nn/module.h"
#include "optim/optimizer.h"

namespace knot::train {

// True when every floating parameter and buffer is finite.
bool all_finite(const nn::Module& model);

struct CheckpointOptions {
  int64_t keep_last = 3;  // <= 0: keep all
  // Test hook: called after each file is written into the temp directory with its name; a throw
  // simulates a crash in the middle of a checkpoint write.
  std::function<void(const std::string& file)> after_file;
  // Written into model.safetensors' metadata as "model_config_sha256" when not empty.
  std::string model_config_sha256;
};

// Writes RUN/checkpoints/step-N and points `latest` at it; returns the directory. Throws (and
// writes nothing) when the model holds NaN/Inf.
std::string save_checkpoint(const std::string& run_dir, int64_t step, const nn::Module& model,
                            const optim::Adam& optimizer, const models::Json& trainer_state,
                            const CheckpointOptions& options = {});
// The same with the optimizer's state given as tensors (Adam's state() names) and its step count:
// a ZeRO-1 run gathers its ranks' moment slices into one full state first (dist/data_parallel.h).
std::string save_checkpoint(const std::string& run_dir, int64_t step, const nn::Module& model,
                            const nn::NamedTensors& optimizer_state, int64_t optimizer_steps,
                            const models::Json& trainer_state, const CheckpointOptions& options = {});

// The directory `latest` names ("" when the run has no checkpoint yet). A pointer that names a
// missing or incomplete directory is an error naming it.
std::string latest_checkpoint(const std::string& run_dir);

struct LoadedCheckpoint {
  std::string dir;
  models::Json trainer_state;
};
// Loads model (strict) and, when given, optimizer moments from `dir`. Non-finite values in either
// file are errors naming the tensor. With `model_config_sha256` given, a checkpoint that records
// another hash is an error (one that records none, written before hashes existed, loads).
LoadedCheckpoint load_checkpoint(const std::string& dir, nn::Module& model, optim::Adam* optimizer,
                                 const std::string& model_config_sha256 = "");

// The step in a checkpoint directory's name ("…/step-000120" -> 120), or -1.
int64_t checkpoint_dir_step(const std::string& dir);

}  // namespace knot::train
