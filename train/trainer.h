// The task-independent training loop: optimizer (Adam/AdamW with weight decay only on weights of
// dim >= 2), LR schedule, gradient accumulation, global-norm clipping, optional KAN regularisation,
// NaN/Inf handling, progress line, metrics.jsonl, validation, checkpoints and exact resume.
//
// A task (translation today, ELECTRA next) implements Task: it owns the model and the data and
// turns "micro-batch `index` of epoch `epoch`" into a loss. The batch order of an epoch must be a
// pure function of (seed, epoch), so the trainer's data position is just a micro-batch counter.
//
// Train config (the "train" object; every key optional, unknown keys are errors naming the key):
//   steps 1000            optimizer steps in the whole run
//   accumulation 1        micro-batches per optimizer step (losses averaged)
//   lr 1e-3, schedule {...} (train/schedule.h), optimizer {"beta1": 0.9, "beta2": 0.98,
//   "eps": 1e-9, "weight_decay": 0.0, "decoupled": true}
//   clip_grad_norm 1.0    0 = off; a non-finite gradient norm skips the step like a NaN loss
//   kan_regularization 0  weight of a sparsity penalty over the KAN layers added to the loss; > 0 on a
//                         model with no KAN layer, or with a layer that cannot give the chosen penalty,
//                         is an error before anything is written
//   kan_reg_metric "weights"  "weights": efficient-kan's penalty on the spline weights
//                         (KANLayer::regularization_loss; B-spline layers only). "activations": pykan's
//                         penalty on the edges' mean |φ| over the micro-batch (activation_regularization;
//                         every basis with per-edge functions), measured on at most kan_reg_rows rows of
//                         each layer's input (evenly spaced; fewer for wide layers, at most 2^21 edge
//                         values per layer). One process only: with several ranks it is an error
//   kan_reg_rows 128          see kan_reg_metric
//   kan_reg_a 1, kan_reg_e 1  the L1 and entropy weights inside that penalty
//   kan_grid_extend []        pykan's grid extension during training: [{"step": 2000, "grid_size": 10},
//                             {"step": 4000, "grid_size": 20}] refits every B-spline KAN layer on a finer
//                             grid (KANLinear::refine_grid) to its input on that step's first
//                             micro-batch, before the step trains. Steps increase, grid sizes grow;
//                             the extended weights' Adam moments start again from zero. Checkpoints
//                             hold the larger weights, and every loader takes the grid size from them
//                             (KANLinear::adopt_state_shapes). Every KAN layer must be B-spline. Several
//                             ranks refuse an extension still ahead (a run extended in one process
//                             resumes on more)
//   kan_grid_update_every 0   > 0: before steps 1, 1+n, 1+2n, ... every KAN layer with a data-dependent
//                             grid (B-spline) adapts its grid to its own input on that step's first
//                             micro-batch (a no-grad forward; the spline weights are refit so the
//                             layer's function is kept), as efficient-kan's update_grid
//   kan_grid_update_until 0   no grid update after this step (0 = for the whole run)
//   kan_grid_margin 0.01      the margin of update_grid
//   log_every 10, val_every 200 (0 = only at the end), checkpoint_every 500 (0 = only at the end),
//   keep_checkpoints 3, on_nan "skip" | "stop",
//   threads 0                 CPU threads, 0 ... 4 x the hardware threads (more is an error naming the
//                             key); 0 = leave as is (all cores). The environment variable
//                             KNOT_NUM_THREADS, when set, wins over this key (core/runtime.h):
//                             KNOT_NUM_THREADS, else threads > 0, else all cores. The configs in
//                             configs/ leave it out, so a run uses the machine it runs on
//   max_consecutive_skips 10, max_skipped_fraction 0.25  on_nan=skip stops the run (non-zero exit)
//                             after that many skipped steps in a row, or when more than that fraction
//                             of the steps of this call were skipped once 20 steps are done
//   A checkpoint is written only when the weights are finite and Task::probe_loss() (one fixed
//   validation batch) is finite; a run whose last checkpoint is refused ends as diverged.
//   progress true (the live line on stderr)
//   optimizer_in_backward false  true: AdamW updates each parameter inside backward as soon as its
//                             gradient is complete and drops the gradient (optim::Optimizer::
//                             set_step_in_backward): the same updates, less memory. Needs
//                             accumulation 1 and clip_grad_norm 0; a non-finite gradient cannot be
//                             skipped (the update happened), so non-finite weights stop the run
//   matmul_precision "highest"  "bf16": f32 GEMMs of the projections with bfloat16 operands and f32
//                             sums (Intel AMX through oneDNN; kernels/linalg.h), ~2x faster steps
//                             for MLP models on a CPU that has AMX; "highest" = full f32
//   zero 0                data-parallel runs (mpirun -np N; docs/distributed.md): 1 = ZeRO-1, the Adam
//                             moments sharded over the ranks (each keeps 1/N); 0 = every rank keeps all
//   dp_bucket_mb 8            gradient bucket size of data-parallel runs (MiB)
//   dp_overlap true           send gradient buckets while backward runs (false: all after backward)
//   dp_check_every 0          compare a hash of the parameters across ranks every N steps (0: at each
//                             checkpoint only); ranks that differ are an error
//   memory_check true     false: skip the check that refuses, before the model is built, a model whose
//                             estimated training memory exceeds what is available (models/memory_estimate.h)
// Data parallelism (mpirun/srun, dist/comm.h): every rank runs this loop on the same model. A task
// gives each rank its rows of every global batch (dist::shard_rows) and scales its loss so that the
// ranks' losses add up to the whole batch's loss (sums over this rank's rows divided by counts over
// the whole batch); the trainer sums the gradients (dist/data_parallel.h), takes every decision
// (NaN skip, clipping, divergence) on values summed over the ranks, so each rank makes the same one,
// and lets rank 0 alone log, validate and write. N ranks train what one process trains.
// Resume: everything that influences later steps is in the checkpoint (weights, Adam moments and
// step, the default Generator that dropout draws from, the micro-batch counter, the running
// log sums), so a resumed run ends bit-identical to an uninterrupted one on the same machine with
// the same thread count. metrics.jsonl is cut back to the checkpoint's step on resume.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/runtime.h"  // MatmulPrecision
#include "models/config.h"
#include "nn/module.h"
#include "train/checkpoint.h"
#include "train/schedule.h"

namespace knot::train {

struct TaskLoss {
  Tensor loss;         // scalar, graph attached
  int64_t tokens = 0;  // tokens processed (for tokens/s)
  // Optional auxiliary loss (scalar, graph attached), e.g. a mixture of experts' load-balancing and
  // z-losses: added to `loss` for backward (and the NaN check), but the logged loss is `loss` alone.
  Tensor aux;
};

class Task {
 public:
  virtual ~Task() = default;
  virtual std::string name() const = 0;
  virtual nn::Module& model() = 0;
  virtual int64_t d_model() const = 0;  // for the noam schedule
  virtual int64_t batches_per_epoch() const = 0;
  // Loss of micro-batch `index` (0 <= index < batches_per_epoch) of `epoch`, model in train mode.
  // In a data-parallel run (dist::Comm::world().size() > 1) the task takes this rank's rows only
  // (dist::shard_rows), keeps the padded lengths of the whole batch, calls set_batch_rows (core/rng.h)
  // so dropout draws the global batch's masks, and returns Σ(this rank's per-token losses) / (the count
  // of the whole batch): summed over the ranks, the loss of the whole batch. `tokens` is this rank's.
  // A rank with no rows returns a zero loss without a graph.
  virtual TaskLoss train_loss(int64_t epoch, int64_t index) = 0;
  // Validation metrics (model in eval mode, no graph), e.g. {"val_loss": 2.1, "val_ppl": 8.2}.
  virtual models::Json validate() = 0;
  // The rows of one global micro-batch (the config's batch size), which must split over the ranks of
  // a data-parallel run; 0 when the task has no fixed row count.
  virtual int64_t batch_rows() const { return 0; }
  // The metric of validate() whose lowest value is "best".
  virtual std::string best_metric() const { return "val_loss"; }
  // The loss of one fixed validation batch (model in eval mode, no graph, no draw from any
  // generator the training uses). A checkpoint is written only when it is finite: weights can be
  // finite and still give NaN (an overflow in attention or a KAN layer).
  virtual double probe_loss() = 0;
  // Extra fields for each logged metrics.jsonl row (e.g. per-expert load), summarising the
  // micro-batches since the previous call; an empty object when the task has none.
  virtual models::Json log_extras() { return models::Json::object(); }
};

struct TrainerConfig {
  int64_t steps = 1000;
  int64_t accumulation = 1;
  double lr = 1e-3;
  models::Json schedule;  // see schedule.h
  double beta1 = 0.9, beta2 = 0.98, eps = 1e-9, weight_decay = 0.0;
  bool decoupled = true;
  double clip_grad_norm = 1.0;
  double kan_regularization = 0.0, kan_reg_a = 1.0, kan_reg_e = 1.0;
  std::string kan_reg_metric = "weights";  // or "activations"
  int64_t kan_reg_rows = 128;
  struct GridExtension {
    int64_t step = 0, grid_size = 0;
  };
  std::vector<GridExtension> kan_grid_extend;
  int64_t kan_grid_update_every = 0, kan_grid_update_until = 0;
  double kan_grid_margin = 0.01;
  int64_t log_every = 10, val_every = 200, checkpoint_every = 500, keep_checkpoints = 3;
  std::string on_nan = "skip";
  // on_nan=skip gives up (the run stops, non-zero exit) after this many skipped steps in a row,
  // or when more than max_skipped_fraction of this run's steps (once it has done 20) were skipped:
  // a diverged run must not go on writing NaN-free but useless checkpoints and exit 0.
  int64_t max_consecutive_skips = 10;
  double max_skipped_fraction = 0.25;
  int64_t threads = 0;
  bool progress = true;
  MatmulPrecision matmul_precision = MatmulPrecision::highest;
  bool optimizer_in_backward = false;
  // Weights to start a fresh run from (not read on --resume, where the checkpoint holds them): a
  // safetensors file with knot's names for this model (e.g. `knot import --format kanformer -o FILE`),
  // or a run directory (its latest checkpoint, else its model.safetensors). Loaded strictly (every
  // name and shape must match, one error listing each problem) before anything is written.
  std::string init_from;
  int64_t zero = 0;              // ZeRO stage of data-parallel runs: 0 or 1
  int64_t dp_bucket_mb = 8;
  bool dp_overlap = true;
  int64_t dp_check_every = 0;

  static TrainerConfig from_json(const models::Json& j);  // the "train" object
};

// Test and tool hooks.
struct TrainerHooks {
  // Stop (without a final checkpoint) once this many steps are done: simulates a killed run.
  int64_t stop_after_steps = -1;
  // Applied to each micro-batch loss before the NaN check (tests inject NaN here).
  std::function<Tensor(int64_t step, const Tensor& loss)> loss_hook;
  CheckpointOptions checkpoint;  // keep_last is overwritten from the config
  std::function<void(const std::string&)> log;  // messages (default: stderr)
};

struct TrainResult {
  int64_t start_step = 0;     // the step the run started (or resumed) from
  int64_t steps = 0;          // steps completed (including skipped ones)
  int64_t skipped_steps = 0;  // NaN/Inf
  double last_loss = 0;       // mean loss of the last logged window that had a finite loss
  bool has_loss = false;      // whether any window of this call had one (last_loss is meaningless otherwise)
  models::Json last_validation;
  double seconds = 0, tokens_per_second = 0;
  bool stopped_on_nan = false;  // on_nan=stop hit a bad step, or non-finite weights after an in-backward update
  bool diverged = false;        // on_nan=skip gave up (see max_consecutive_skips), or the final checkpoint
                                // was refused because the model gives NaN/Inf: the run failed
  std::string failure;          // why, when stopped_on_nan or diverged
  int64_t grid_updates = 0;  // update passes done in this call (each updates every B-spline KAN layer)
  int64_t grid_extensions = 0;  // kan_grid_extend entries applied in this call
  int world_size = 1;        // ranks that trained
  double comm_wait_seconds = 0, comm_bytes_per_step = 0;  // data-parallel: exposed wait, bytes sent per step
};

// What a task's entry point hands run_trainer besides the task: the run's files, which are written
// only after every check has passed, and the model config that every checkpoint is tied to.
struct RunSetup {
  // Hashed (SHA-256 of its canonical dump) into every checkpoint's model.safetensors metadata as
  // "model_config_sha256"; loading a checkpoint into a model of another config is an error (the
  // shapes can agree while the model differs, e.g. num_heads 4 vs 2). Null: no hash.
  models::Json model_config;
  // Files (name inside run_dir, content) such as config.json and the tokenizer; each written
  // atomically once the lock is held and the checkpoint (resume) or its absence (fresh) is checked.
  std::vector<std::pair<std::string, std::string>> files;
  std::string writer = "train";  // names the command in the lock record and in errors
};

// Trains `task` in run_dir. With resume the state comes from run_dir's latest checkpoint (an
// error when there is none); without it, run_dir must not hold checkpoints yet. The run directory
// is locked (train/run_lock.h) for the whole call, and nothing in it changes before every check
// (lock, checkpoint, model config, trainer state) has passed.
TrainResult run_trainer(Task& task, const TrainerConfig& cfg, const std::string& run_dir, bool resume,
                        const TrainerHooks& hooks = {}, const RunSetup& setup = {});

// SHA-256 of the canonical dump of a model config ("" for null).
std::string model_config_hash(const models::Json& model_config);

// Checks every field of a checkpoint's trainer_state.json (types and ranges, each error naming the
// file and the key); `dir_step` is the step in the directory's name, which "step" must equal.
void validate_trainer_state(const models::Json& s, const std::string& file, int64_t dir_step);

// Σ regularization_loss over every KANLayer in the model (undefined Tensor when there is none).
Tensor kan_regularization_loss(const nn::Module& model, double a, double e);

// pykan's penalty on activations (train.kan_reg_metric "activations"): Σ activation_regularization over
// every KANLayer of the model that recorded an input in its last forward (set_capture_input), each on
// at most `rows` evenly spaced rows of that input (rows ⌊j·N/R⌋, j < R) and at most 2^21 / (in·out)
// rows (at least one). Undefined Tensor when no layer recorded an input.
Tensor kan_activation_regularization_loss(const nn::Module& model, int64_t rows, double a, double e);

// One grid-update pass: a no-grad forward of `forward` with input capture on every KANLayer of
// `model`, then update_grid(captured input, margin) on each layer that saw an input. Returns the
// number of layers updated.
// In a data-parallel run, `gather` (when given) turns a layer's captured input rows into every rank's
// rows in rank order, so each rank fits the grid one process would fit to the whole batch.
// With `refine_to` > 0 each layer refines its grid to that size instead (grid extension,
// KANLayer::refine_grid).
int64_t update_kan_grids(nn::Module& model, const std::function<void()>& forward, double margin,
                         const std::function<Tensor(const Tensor&)>& gather = {}, int64_t refine_to = 0);

}  // namespace knot::train
