// The training loop (see trainer.h).
#include "train/trainer.h"

#include "core/runtime.h"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/jsonl.h"
#include "data/prepare.h"  // sha256_hex
#include "dist/comm.h"
#include "dist/data_parallel.h"
#include "models/electra.h"
#include "train/progress.h"
#include "train/run_lock.h"
#include "train/trainer_state.h"
#include "nn/basis_registry.h"
#include "nn/kan_linear.h"
#include "ops/elementwise.h"
#include "ops/indexing.h"
#include "optim/optimizer.h"

namespace fs = std::filesystem;

namespace knot::train {

TrainerConfig TrainerConfig::from_json(const models::Json& j) {
  TrainerConfig c;
  models::ConfigReader r(j.is_null() ? models::Json::object() : j, "train");
  c.steps = r.get<int64_t>("steps", c.steps, "optimizer steps in the whole run");
  c.accumulation = r.get<int64_t>("accumulation", c.accumulation, "micro-batches per optimizer step (losses averaged)");
  c.lr = r.get<double>("lr", c.lr, "peak learning rate");
  c.schedule = r.get<models::Json>("schedule", models::Json(), "learning-rate schedule: a kind (\"noam\", ...) or an object (train.schedule.*)");
  const models::Json opt = r.get<models::Json>("optimizer", models::Json::object(), "AdamW settings (train.optimizer.*)");
  {
    models::ConfigReader o(opt, "train.optimizer");
    const std::string kind = o.get<std::string>("kind", "adamw", "\"adamw\" (decoupled weight decay) or \"adam\" (L2 in the gradient)");
    KNOT_CHECK(kind == "adam" || kind == "adamw",
               "config 'train.optimizer': key 'kind' must be 'adam' or 'adamw', got '{}'", kind);
    c.decoupled = kind == "adamw";
    c.beta1 = o.get<double>("beta1", c.beta1, "Adam beta1");
    c.beta2 = o.get<double>("beta2", c.beta2, "Adam beta2");
    c.eps = o.get<double>("eps", c.eps, "Adam epsilon");
    c.weight_decay = o.get<double>("weight_decay", c.weight_decay, "weight decay");
    o.finish();
  }
  c.clip_grad_norm = r.get<double>("clip_grad_norm", c.clip_grad_norm, "clip the global gradient norm to this (0 = off); a non-finite norm skips the step");
  c.kan_regularization = r.get<double>("kan_regularization", c.kan_regularization, "weight of a sparsity penalty over the KAN layers added to the loss (0 = off)");
  c.kan_reg_a = r.get<double>("kan_reg_a", c.kan_reg_a, "L1 weight inside the KAN penalty");
  c.kan_reg_e = r.get<double>("kan_reg_e", c.kan_reg_e, "entropy weight inside the KAN penalty");
  c.kan_reg_metric = r.get<std::string>("kan_reg_metric", c.kan_reg_metric, "\"weights\" (efficient-kan: spline weights, B-spline only) or \"activations\" (pykan: mean |phi| of each edge)");
  c.kan_reg_rows = r.get<int64_t>("kan_reg_rows", c.kan_reg_rows, "input rows per layer for the \"activations\" penalty");
  const models::Json extend = r.get<models::Json>("kan_grid_extend", models::Json::array(), "pykan's grid extension: [{\"step\": S, \"grid_size\": G}, ...] refits every B-spline layer on a finer grid at step S");
  KNOT_CHECK(extend.is_array(),
             "config 'train': key 'kan_grid_extend' must be a list like [{{\"step\": 2000, \"grid_size\": 10}}], got {}",
             extend.dump());
  for (const models::Json& e : extend) {
    KNOT_CHECK(e.is_object(),
               "config 'train': each entry of 'kan_grid_extend' must be an object {{\"step\": S, \"grid_size\": G}}, "
               "got {}",
               e.dump());
    models::ConfigReader er(e, "train.kan_grid_extend[]");
    GridExtension g;
    g.step = er.get<int64_t>("step", 0, "the step the extension happens before");
    g.grid_size = er.get<int64_t>("grid_size", 0, "the new grid size (grows entry by entry)");
    er.finish();
    KNOT_CHECK(g.step >= 1, "config 'train.kan_grid_extend': 'step' must be >= 1, got {}", e.dump());
    KNOT_CHECK(g.grid_size >= 1 && g.grid_size <= 1000,
               "config 'train.kan_grid_extend': 'grid_size' must be 1 … 1000, got {}", e.dump());
    if (!c.kan_grid_extend.empty()) {
      KNOT_CHECK(g.step > c.kan_grid_extend.back().step,
                 "config 'train.kan_grid_extend': steps must increase, got {} after step {}", e.dump(),
                 c.kan_grid_extend.back().step);
      KNOT_CHECK(g.grid_size > c.kan_grid_extend.back().grid_size,
                 "config 'train.kan_grid_extend': grid sizes must grow, got {} after grid size {}", e.dump(),
                 c.kan_grid_extend.back().grid_size);
    }
    c.kan_grid_extend.push_back(g);
  }
  c.kan_grid_update_every = r.get<int64_t>("kan_grid_update_every", c.kan_grid_update_every, "> 0: B-spline grids adapt to their input every N steps (efficient-kan's update_grid)");
  c.kan_grid_update_until = r.get<int64_t>("kan_grid_update_until", c.kan_grid_update_until, "no grid update after this step (0 = the whole run)");
  c.kan_grid_margin = r.get<double>("kan_grid_margin", c.kan_grid_margin, "the margin of update_grid");
  c.log_every = r.get<int64_t>("log_every", c.log_every, "steps per logged metrics row and progress update");
  c.val_every = r.get<int64_t>("val_every", c.val_every, "steps between validations (0 = only at the end)");
  c.checkpoint_every = r.get<int64_t>("checkpoint_every", c.checkpoint_every, "steps between checkpoints (0 = only at the end)");
  c.keep_checkpoints = r.get<int64_t>("keep_checkpoints", c.keep_checkpoints, "checkpoints kept (the oldest are removed)");
  c.on_nan = r.get<std::string>("on_nan", c.on_nan, "a NaN/Inf loss or gradient: \"skip\" the step or \"stop\" the run");
  c.max_consecutive_skips = r.get<int64_t>("max_consecutive_skips", c.max_consecutive_skips, "on_nan=skip: the run stops (non-zero exit) after this many skipped steps in a row");
  c.max_skipped_fraction = r.get<double>("max_skipped_fraction", c.max_skipped_fraction, "on_nan=skip: the run stops when more than this fraction of the steps were skipped (after 20 steps)");
  c.threads = r.get<int64_t>("threads", c.threads, "CPU threads (0 = all cores; KNOT_NUM_THREADS wins)");
  c.progress = r.get<bool>("progress", c.progress, "the live progress line on stderr");
  const std::string precision = r.get<std::string>("matmul_precision", matmul_precision_name(c.matmul_precision), "\"highest\" (f32) or \"bf16\" (bfloat16 operands, f32 sums: AMX through oneDNN)");
  c.optimizer_in_backward = r.get<bool>("optimizer_in_backward", c.optimizer_in_backward, "AdamW updates each parameter inside backward (less memory; needs accumulation 1, clip_grad_norm 0)");
  c.init_from = r.get<std::string>("init_from", c.init_from, "start a fresh run from these weights (a safetensors file or a run directory's latest checkpoint)");
  c.zero = r.get<int64_t>("zero", c.zero, "data-parallel runs: 1 = ZeRO-1 (Adam moments sharded over the ranks), 0 = every rank keeps all");
  c.dp_bucket_mb = r.get<int64_t>("dp_bucket_mb", c.dp_bucket_mb, "data-parallel gradient bucket size (MiB)");
  c.dp_overlap = r.get<bool>("dp_overlap", c.dp_overlap, "data-parallel: send gradient buckets while backward runs");
  c.dp_check_every = r.get<int64_t>("dp_check_every", c.dp_check_every, "data-parallel: compare a parameter hash across ranks every N steps (0 = at checkpoints)");
  // Read again by models::check_training_memory (models/memory_estimate.h), which uses it.
  r.get<bool>("memory_check", true,
              "refuse, before the model is built, a model whose estimated training memory exceeds what is available");
  r.finish();
  KNOT_CHECK(!c.optimizer_in_backward || (c.accumulation == 1 && c.clip_grad_norm == 0),
             "config 'train': key 'optimizer_in_backward' needs 'accumulation' 1 and 'clip_grad_norm' 0 (both need "
             "every gradient before any update), got accumulation {} and clip_grad_norm {}",
             c.accumulation, c.clip_grad_norm);
  KNOT_CHECK(c.zero == 0 || c.zero == 1, "config 'train': key 'zero' must be 0 or 1 (ZeRO-1), got {}", c.zero);
  KNOT_CHECK(c.dp_bucket_mb >= 1 && c.dp_bucket_mb <= 1024, "config 'train': key 'dp_bucket_mb' must be 1 ... 1024, got {}",
             c.dp_bucket_mb);
  KNOT_CHECK(c.dp_check_every >= 0, "config 'train': key 'dp_check_every' must be >= 0, got {}", c.dp_check_every);
  try {
    c.matmul_precision = parse_matmul_precision(precision);
  } catch (const Error& e) {
    KNOT_FAIL("config 'train': key 'matmul_precision': {}", e.what());
  }
  KNOT_CHECK(c.threads >= 0 && c.threads <= max_num_threads(), "config 'train': key 'threads' must be 0 (all cores) to {} (4 x the hardware threads), got {}", max_num_threads(), c.threads);
  KNOT_CHECK(c.steps > 0, "config 'train': key 'steps' must be > 0, got {}", c.steps);
  // The schedule's keys are checked (and declared) here, before any work; the trainer builds it
  // with the model's width.
  (void)Schedule::from_json(c.schedule.is_null() ? models::Json::object() : c.schedule, c.lr, c.steps, 1);
  KNOT_CHECK(c.accumulation > 0, "config 'train': key 'accumulation' must be > 0, got {}", c.accumulation);
  KNOT_CHECK(c.lr >= 0, "config 'train': key 'lr' must be >= 0, got {}", c.lr);
  KNOT_CHECK(c.log_every > 0, "config 'train': key 'log_every' must be > 0, got {}", c.log_every);
  KNOT_CHECK(c.val_every >= 0 && c.checkpoint_every >= 0,
             "config 'train': keys 'val_every' and 'checkpoint_every' must be >= 0");
  KNOT_CHECK(c.on_nan == "skip" || c.on_nan == "stop", "config 'train': key 'on_nan' must be 'skip' or 'stop', got '{}'",
             c.on_nan);
  KNOT_CHECK(c.clip_grad_norm >= 0, "config 'train': key 'clip_grad_norm' must be >= 0");
  KNOT_CHECK(c.max_consecutive_skips > 0, "config 'train': key 'max_consecutive_skips' must be > 0, got {}",
             c.max_consecutive_skips);
  KNOT_CHECK(c.max_skipped_fraction > 0 && c.max_skipped_fraction <= 1,
             "config 'train': key 'max_skipped_fraction' must be in (0, 1], got {}", c.max_skipped_fraction);
  KNOT_CHECK(c.kan_reg_metric == "weights" || c.kan_reg_metric == "activations",
             "config 'train': key 'kan_reg_metric' must be 'weights' (efficient-kan's penalty) or 'activations' "
             "(pykan's), got '{}'",
             c.kan_reg_metric);
  KNOT_CHECK(c.kan_reg_rows >= 1, "config 'train': key 'kan_reg_rows' must be >= 1, got {}", c.kan_reg_rows);
  KNOT_CHECK(c.kan_regularization >= 0, "config 'train': key 'kan_regularization' must be >= 0, got {}",
             c.kan_regularization);
  for (const GridExtension& g : c.kan_grid_extend)
    KNOT_CHECK(g.step <= c.steps,
               "config 'train.kan_grid_extend': step {} is after the run's last step ({}); the extension would never "
               "happen",
               g.step, c.steps);
  KNOT_CHECK(c.kan_grid_update_every >= 0 && c.kan_grid_update_until >= 0 && c.kan_grid_margin >= 0,
             "config 'train': keys 'kan_grid_update_every', 'kan_grid_update_until' and 'kan_grid_margin' must be >= 0");
  return c;
}

Tensor kan_regularization_loss(const nn::Module& model, double a, double e) {
  Tensor total;
  for (const auto& [name, m] : model.named_modules()) {
    const auto* k = dynamic_cast<const nn::KANLayer*>(m);
    if (!k) continue;
    const Tensor r = k->regularization_loss(a, e);
    if (!r.defined()) continue;
    total = total.defined() ? add(total, r) : r;
  }
  return total;
}

Tensor kan_activation_regularization_loss(const nn::Module& model, int64_t rows, double a, double e) {
  constexpr int64_t kMaxEdgeValues = int64_t{1} << 21;  // per layer: (rows, out, in) values held for backward
  Tensor total;
  for (const auto& [name, m] : model.named_modules()) {
    const auto* k = dynamic_cast<const nn::KANLayer*>(m);
    if (!k || !k->captured_input().defined()) continue;
    const int64_t in = k->in_features(), out = k->out_features();
    Tensor x = k->captured_input().reshape({-1, in});
    const int64_t N = x.size(0);
    if (N == 0) continue;
    const int64_t R = std::min({rows, N, std::max<int64_t>(1, kMaxEdgeValues / std::max<int64_t>(1, in * out))});
    if (R < N) {
      std::vector<int64_t> idx(static_cast<size_t>(R));
      for (int64_t j = 0; j < R; ++j) idx[static_cast<size_t>(j)] = j * N / R;
      x = index_select(x, 0, from_vector(idx, {R}).to(x.device()));
    }
    Tensor r;
    try {
      r = k->activation_regularization(x, a, e);
    } catch (const Error& err) {
      KNOT_FAIL("the activations penalty of KAN layer '{}': {}", name, err.what());
    }
    total = total.defined() ? add(total, r) : r;
  }
  return total;
}

int64_t update_kan_grids(nn::Module& model, const std::function<void()>& forward, double margin,
                         const std::function<Tensor(const Tensor&)>& gather, int64_t refine_to) {
  std::vector<nn::KANLayer*> layers;
  std::vector<std::string> names;
  for (const auto& [name, m] : model.named_modules())
    if (const auto* k = dynamic_cast<const nn::KANLayer*>(m)) {
      layers.push_back(const_cast<nn::KANLayer*>(k));  // model is ours to change; named_modules is const
      names.push_back(name);
    }
  if (layers.empty()) return 0;
  int64_t updated = 0;
  try {
    NoGradGuard no_grad;
    for (auto* k : layers) k->set_capture_input(true);
    forward();
    for (size_t i = 0; i < layers.size(); ++i) {
      nn::KANLayer* k = layers[i];
      Tensor x = k->captured_input();
      k->set_capture_input(false);
      if (gather) {  // every rank must take part, whether or not its rows reached this layer
        x = gather(x);
      }
      if (!x.defined()) continue;
      try {
        if (refine_to > 0)
          k->refine_grid(x, refine_to, margin);
        else
          k->update_grid(x, margin);
      } catch (const Error& e) {
        KNOT_FAIL("{} of KAN layer '{}': {}", refine_to > 0 ? "grid extension" : "grid update", names[i], e.what());
      }
      ++updated;
    }
  } catch (...) {
    for (auto* k : layers) k->set_capture_input(false);
    throw;
  }
  return updated;
}

std::string model_config_hash(const models::Json& model_config) {
  if (model_config.is_null()) return std::string();
  // ELECTRA's KAN sites changed spelling ("kan" became "projection"/"projections"); its hash stays
  // over the earlier spelling, so a checkpoint's hash does not depend on how its config spells them.
  if (model_config.is_object() && model_config.value("model", "") == "electra")
    return data::sha256_hex(models::ElectraConfig::from_json(model_config).legacy_json().dump());
  return data::sha256_hex(model_config.dump());
}

void validate_trainer_state(const models::Json& s, const std::string& file, int64_t dir_step) {
  KNOT_CHECK(s.is_object(), "checkpoint: '{}' must hold a JSON object, got {}", file, std::string(s.type_name()));
  auto field = [&](const char* key) -> const models::Json& {
    const auto it = s.find(key);
    KNOT_CHECK(it != s.end(), "checkpoint: '{}' has no key '{}'", file, key);
    return *it;
  };
  auto count = [&](const char* key) -> int64_t {  // an integer >= 0
    const models::Json& v = field(key);
    KNOT_CHECK(v.is_number_integer() && (v.is_number_unsigned() || v.get<int64_t>() >= 0),
               "checkpoint: '{}': key '{}' must be an integer >= 0, got {}", file, key, v.dump());
    KNOT_CHECK(!v.is_number_unsigned() || v.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX),
               "checkpoint: '{}': key '{}' is out of range: {}", file, key, v.dump());
    return v.get<int64_t>();
  };
  KNOT_CHECK(field("task").is_string(), "checkpoint: '{}': key 'task' must be a string, got {}", file,
             field("task").dump());
  const int64_t step = count("step");
  KNOT_CHECK(dir_step < 0 || step == dir_step,
             "checkpoint: '{}': key 'step' is {} but the checkpoint directory is step {}", file, step, dir_step);
  const int64_t micro = count("micro_batch");
  KNOT_CHECK(micro >= step, "checkpoint: '{}': key 'micro_batch' ({}) must be >= key 'step' ({}): every step takes "
             "at least one micro-batch", file, micro, step);
  const int64_t skipped = count("skipped_steps");
  KNOT_CHECK(skipped <= step, "checkpoint: '{}': key 'skipped_steps' ({}) exceeds key 'step' ({})", file, skipped, step);
  count("window_count");
  count("window_tokens");
  count("optimizer_steps");
  const models::Json& wl = field("window_loss");
  KNOT_CHECK(wl.is_number() && std::isfinite(wl.get<double>()),
             "checkpoint: '{}': key 'window_loss' must be a finite number, got {}", file, wl.dump());
  const models::Json& best = field("best");
  KNOT_CHECK(best.is_null() || best.is_number(), "checkpoint: '{}': key 'best' must be a number or null, got {}", file,
             best.dump());
  const auto lv = s.find("last_validation");
  KNOT_CHECK(lv == s.end() || lv->is_null() || lv->is_object(),
             "checkpoint: '{}': key 'last_validation' must be an object or null, got {}", file, lv->dump());
  const models::Json& rng = field("rng");
  KNOT_CHECK(rng.is_object() && rng.contains("default") && rng["default"].is_object(),
             "checkpoint: '{}': key 'rng' must be an object with a 'default' object, got {}", file, rng.dump());
  for (const char* k : {"seed", "draws"}) {
    const auto it = rng["default"].find(k);
    KNOT_CHECK(it != rng["default"].end() && it->is_number_integer() &&
                   (it->is_number_unsigned() || it->get<int64_t>() >= 0),
               "checkpoint: '{}': key 'rng.default.{}' must be an integer >= 0, got {}", file, k,
               it == rng["default"].end() ? std::string("nothing") : it->dump());
  }
}

namespace {

// Data parallelism: the settings that cannot be used with several ranks, and how the ranks split
// each batch (said once, by rank 0).
void check_data_parallel(const Task& task, const TrainerConfig& cfg, const dist::Comm& comm,
                         const std::function<void(const std::string&)>& log) {
  if (comm.distributed()) {
    KNOT_CHECK(!cfg.optimizer_in_backward,
               "train: optimizer_in_backward cannot be used with {} ranks (each update needs the gradient summed over "
               "the ranks first); set train.optimizer_in_backward=false",
               comm.size());
    const int64_t rows = task.batch_rows();
    KNOT_CHECK(rows == 0 || rows % comm.size() == 0,
               "train: the global batch of {} rows does not split over {} ranks; choose a batch size that is a "
               "multiple of the rank count (each rank takes batch_size / ranks rows of every batch)",
               rows, comm.size());
    log(fmt::format("{}: data parallel over {} ranks ({} per machine here), {} CPU threads each, ZeRO-{}{}",
                    task.name(), comm.size(), comm.local_size(), num_threads(), cfg.zero,
                    rows > 0 ? fmt::format(", {} rows of each {}-row batch per rank", rows / comm.size(), rows) : ""));
  } else if (cfg.zero == 1) {
    log(fmt::format("{}: train.zero=1 has no effect in one process (it shards the optimizer over the ranks of "
                    "mpirun -np N)", task.name()));
  }
}

// The model's KAN layers: all of them (by name), and those with a knot grid (B-spline: on each logged
// step, the fraction of their inputs outside the grid, on that step's first micro-batch, goes into the
// metrics row as out_of_grid_<basis>).
struct KanLayers {
  std::vector<std::pair<std::string, nn::KANLayer*>> all;
  std::vector<nn::KANLayer*> grid;
};

// The KAN layers, after checking what the train config's KAN keys ask of them and of the ranks.
KanLayers kan_layers_checked(nn::Module& model, const TrainerConfig& cfg, const dist::Comm& comm, bool act_reg) {
  KanLayers out;
  if (cfg.kan_regularization > 0) nn::check_kan_regularization(model, "train.kan_regularization", act_reg);
  KNOT_CHECK(!act_reg || !comm.distributed(),
             "train: kan_reg_metric 'activations' cannot be used with {} ranks yet (each edge's mean |φ| would have "
             "to be summed over the ranks' rows before the entropy is taken); use kan_reg_metric 'weights' or one "
             "process",
             comm.size());
  for (const auto& [name, m] : model.named_modules())
    if (const auto* k = dynamic_cast<const nn::KANLayer*>(m))
      out.all.emplace_back(name, const_cast<nn::KANLayer*>(k));  // the model is ours to change
  for (const auto& [name, k] : out.all) {
    int order = 0;
    if (k->knot_grid(&order).defined()) out.grid.push_back(k);
  }
  if (!cfg.kan_grid_extend.empty()) {
    KNOT_CHECK(!out.all.empty(), "train: kan_grid_extend is set, but the model has no KAN layer; remove the key");
    for (const auto& [name, k] : out.all)
      KNOT_CHECK(dynamic_cast<const nn::KANLinear*>(k) != nullptr,
                 "train: kan_grid_extend refines B-spline grids, but KAN layer '{}' is kan_{}, which has no grid; "
                 "remove the key or use kan_bspline",
                 name, k->basis());
  }
  return out;
}

// Grid extensions still to come (after `step`; a resumed run has taken the grid size of its
// checkpoint's weights) must grow every layer's grid, in one process.
void check_grid_extensions_ahead(const TrainerConfig& cfg, const std::vector<std::pair<std::string, nn::KANLayer*>>& kan_layers,
                                 int64_t step, const dist::Comm& comm) {
  for (const auto& ext : cfg.kan_grid_extend) {
    if (ext.step <= step) continue;
    KNOT_CHECK(!comm.distributed(),
               "train: kan_grid_extend cannot be used with {} ranks yet (the gradient buckets are sized once); "
               "extend the grid in one process, then resume the run with more (the extension at step {} is still "
               "ahead)",
               comm.size(), ext.step);
    for (const auto& [name, k] : kan_layers) {
      const int64_t g = dynamic_cast<const nn::KANLinear*>(k)->options().grid_size;
      KNOT_CHECK(ext.grid_size > g,
                 "train: kan_grid_extend at step {} asks for grid size {}, but KAN layer '{}' already has grid size {}; "
                 "grid extension only grows grids",
                 ext.step, ext.grid_size, name, g);
    }
  }
}

// --resume: loads run_dir's latest checkpoint (weights, optimizer, trainer state and RNG) after
// checking it belongs to this task and model; returns its directory.
std::string restore_latest_checkpoint(const std::string& run_dir, const std::string& task, nn::Module& model,
                                      optim::Adam& opt, const std::string& config_sha, TrainerState& st) {
  const std::string dir = latest_checkpoint(run_dir);
  KNOT_CHECK(!dir.empty(), "train --resume: '{}' has no checkpoint (no checkpoints/latest)", run_dir);
  const LoadedCheckpoint ck = load_checkpoint(dir, model, &opt, config_sha);
  const models::Json& s = ck.trainer_state;
  const std::string state_file = (fs::path(dir) / "trainer_state.json").string();
  validate_trainer_state(s, state_file, checkpoint_dir_step(dir));
  KNOT_CHECK(s.at("task").get<std::string>() == task, "train --resume: checkpoint '{}' is for task '{}', not '{}'", dir,
             s.at("task").get<std::string>(), task);
  KNOT_CHECK(s.at("optimizer_steps").get<int64_t>() == opt.steps(),
             "checkpoint: '{}': key 'optimizer_steps' is {} but optimizer.safetensors records {} steps", state_file,
             s.at("optimizer_steps").get<int64_t>(), opt.steps());
  st.restore(s);
  return dir;
}

// train.init_from: loads the starting weights (a safetensors file, or a run directory's latest
// checkpoint) strictly into `model`; returns the file read.
std::string load_init_weights(const std::string& init_from, nn::Module& model) {
  std::string path = init_from;
  if (fs::is_directory(path)) {
    const std::string ck = latest_checkpoint(path);
    path = ck.empty() ? (fs::path(path) / "model.safetensors").string() : (fs::path(ck) / "model.safetensors").string();
  }
  KNOT_CHECK(fs::is_regular_file(path), "train.init_from: '{}' is not a safetensors file or a run directory with one",
             init_from);
  try {
    model.load(path, /*strict=*/true);
  } catch (const std::exception& e) {
    KNOT_FAIL("train.init_from: the weights of '{}' do not fit this model: {}", path, e.what());
  }
  return path;
}

// on_nan=skip, after a skipped step: why the run has diverged ("" while it has not): too many steps
// skipped in a row (train.max_consecutive_skips), or too large a share of this call's steps (after 20
// of them, train.max_skipped_fraction).
std::string divergence(const TrainerConfig& cfg, int64_t step, int64_t done_here, int64_t consecutive_skips,
                       int64_t skipped_this_run, const std::string& why) {
  if (consecutive_skips >= cfg.max_consecutive_skips)
    return fmt::format("{} steps in a row had a non-finite loss or gradient (the last: step {}, {}; "
                       "train.max_consecutive_skips = {})",
                       consecutive_skips, step, why, cfg.max_consecutive_skips);
  if (done_here >= 20 &&
      static_cast<double>(skipped_this_run) > cfg.max_skipped_fraction * static_cast<double>(done_here))
    return fmt::format("{} of the {} steps of this run were skipped (more than train.max_skipped_fraction = {}; the "
                       "last: step {}, {})",
                       skipped_this_run, done_here, cfg.max_skipped_fraction, step, why);
  return "";
}

// A logged window's row of metrics.jsonl (the trainer adds the ranks', grids' and task's extras).
models::Json window_row(const TrainerState& st, double mean_loss, double lr, const ProgressMeter::Window& w,
                        int64_t batches_per_epoch) {
  return {{"step", st.step},
          {"epoch", st.micro / batches_per_epoch},
          {"loss", mean_loss},
          {"ppl", std::exp(std::min(mean_loss, 50.0))},
          {"lr", lr},
          {"tokens", st.win_tokens},
          {"tokens_per_s", w.tokens_per_s},
          {"elapsed_s", w.elapsed_s}};
}

// The live progress line: "translation step 40/200 | epoch 1 | loss 5.1234 | lr 1.000e-03 | 812 tok/s | ETA 2m10s".
std::string progress_line(const std::string& who, const TrainerState& st, int64_t total_steps,
                          int64_t batches_per_epoch, double lr, const ProgressMeter::Window& w) {
  return fmt::format("{} step {}/{} | epoch {} | loss {} | lr {:.3e} | {:.0f} tok/s | ETA {}", who, st.step,
                     total_steps, st.micro / batches_per_epoch,
                     st.win_count > 0 ? fmt::format("{:.4f}", st.win_loss / static_cast<double>(st.win_count))
                                      : std::string("- (every step skipped)"),
                     lr, w.tokens_per_s, format_duration(w.eta_s));
}

}  // namespace

TrainResult run_trainer(Task& task, const TrainerConfig& cfg, const std::string& run_dir, bool resume,
                        const TrainerHooks& hooks, const RunSetup& setup) {
  const dist::Comm& comm = dist::Comm::world();
  const bool lead = comm.rank() == 0;  // rank 0 alone logs, validates and writes
  std::function<void(const std::string&)> log = [&](const std::string& s) {
    if (!lead) return;
    if (hooks.log)
      hooks.log(s);
    else
      std::fprintf(stderr, "%s\n", s.c_str());
  };
  // One writer per run directory, from the first check to the last write.
  std::optional<RunLock> lock;
  if (lead) lock.emplace(run_dir, setup.writer);
  apply_thread_setting(cfg.threads, "train.threads");
  check_data_parallel(task, cfg, comm, log);
  // The run's GEMM precision, and the caller's back when the run ends (however it ends).
  struct PrecisionScope {
    MatmulPrecision saved = matmul_precision();
    ~PrecisionScope() { set_matmul_precision(saved); }
  } precision_scope;
  set_matmul_precision(cfg.matmul_precision);
  nn::Module& model = task.model();
  model.train();
  const bool act_reg = cfg.kan_regularization > 0 && cfg.kan_reg_metric == "activations";
  // The KAN layers (checked against the train config's KAN keys). With the activations penalty each
  // records its input in the training forwards (set_capture_input); recording ends with this call,
  // however it ends.
  KanLayers kan = kan_layers_checked(model, cfg, comm, act_reg);
  auto& kan_layers = kan.all;
  auto& grid_layers = kan.grid;
  struct CaptureOff {
    std::vector<std::pair<std::string, nn::KANLayer*>>& layers;
    ~CaptureOff() {
      for (auto& [name, k] : layers) k->set_capture_input(false);
    }
  } capture_off{kan_layers};
  std::map<std::string, std::pair<double, double>> grid_counts;  // basis -> (outside, total) since the last row

  auto groups = optim::decay_groups(model, cfg.weight_decay);
  optim::Adam opt(std::move(groups), cfg.lr, optim::AdamOptions{cfg.beta1, cfg.beta2, cfg.eps, cfg.decoupled});
  if (!comm.distributed()) opt.set_step_in_backward(cfg.optimizer_in_backward);
  const Schedule sched = Schedule::from_json(cfg.schedule, cfg.lr, cfg.steps, task.d_model());
  std::vector<Tensor> params = model.parameters();
  const std::string config_sha = model_config_hash(setup.model_config);

  // Trainer state (all of it goes into trainer_state.json; train/trainer_state.h).
  TrainerState st;
  int64_t &step = st.step, &micro = st.micro, &skipped = st.skipped, &win_count = st.win_count,
          &win_tokens = st.win_tokens;
  double &win_loss = st.win_loss, &best = st.best;
  models::Json& last_val = st.last_val;

  // Every check before the first write: a refused run leaves the directory as it was.
  const fs::path metrics_path = fs::path(run_dir) / "metrics.jsonl";
  std::string resumed_from;
  if (resume) {
    resumed_from = restore_latest_checkpoint(run_dir, task.name(), model, opt, config_sha, st);
  } else {
    KNOT_CHECK(latest_checkpoint(run_dir).empty(),
               "train: '{}' already holds checkpoints; continue it with --resume or choose another run directory",
               run_dir);
    if (!cfg.init_from.empty()) {  // train.init_from: the starting weights (a file, or a run's latest)
      const std::string path = load_init_weights(cfg.init_from, model);
      log(fmt::format("{}: starting from the weights of {}", task.name(), path));
    }
  }
  check_grid_extensions_ahead(cfg, kan_layers, step, comm);
  // Data parallelism: gradient sync (and with ZeRO-1 the optimizer's moments cut to this rank's share,
  // after a resume loaded them whole), and the ranks agree before anything is written: a rank whose
  // checks failed has ended the job (dist::abort_job) before rank 0 gets past this point.
  std::unique_ptr<dist::DataParallel> dp;
  // The first rank whose parameters differ from rank 0's (0 when all agree): a SHA-256 per rank.
  auto first_differing_rank = [&]() {
    const std::vector<std::string> hashes = comm.all_gather(dist::DataParallel::parameter_hash(opt));
    for (int r = 1; r < comm.size(); ++r)
      if (hashes[static_cast<size_t>(r)] != hashes[0]) return r;
    return 0;
  };
  if (comm.distributed()) {
    dist::DataParallelOptions o;
    o.bucket_bytes = cfg.dp_bucket_mb << 20;
    o.overlap = cfg.dp_overlap;
    o.zero1 = cfg.zero == 1;
    dp = std::make_unique<dist::DataParallel>(comm, opt, params, o);
    const int r = first_differing_rank();
    KNOT_CHECK(r == 0,
               "train: rank {} starts from other weights than rank 0 (a run directory or init_from file that differs "
               "between machines?)",
               r);
  }
  // Every check has passed: now the run directory may change, each file atomically.
  if (lead) {
    for (const auto& [name, content] : setup.files) data::write_file_atomic((fs::path(run_dir) / name).string(), content);
    if (resume) {
      truncate_metrics(metrics_path, step);
      log(fmt::format("{}: resumed from {} at step {}", task.name(), resumed_from, step));
    } else {
      data::write_file_atomic(metrics_path.string(), "");
    }
  }
  if (cfg.matmul_precision == MatmulPrecision::bf16)
    log(onednn_available() ? "matmul precision bf16: projections run bfloat16 GEMMs with f32 sums (oneDNN)"
                           : "matmul precision bf16 requested, but this build has no oneDNN: GEMMs stay f32");
  std::ofstream metrics;
  if (lead) metrics.open(metrics_path, std::ios::app);
  auto write_metrics = [&](const models::Json& j) {
    if (!lead) return;
    metrics << j.dump() << "\n";
    metrics.flush();
  };

  auto trainer_state = [&]() {
    return st.to_json(task.name(), task.best_metric(), task.batches_per_epoch(), opt.steps());
  };
  CheckpointOptions ck_opt = hooks.checkpoint;
  ck_opt.keep_last = cfg.keep_checkpoints;
  ck_opt.model_config_sha256 = config_sha;
  auto check_ranks_agree = [&]() {
    if (!comm.distributed()) return;
    const int r = first_differing_rank();
    KNOT_CHECK(r == 0,
               "train: step {}: the parameters of rank {} differ from rank 0's (the ranks no longer train one model); "
               "stopping. The last checkpoint is kept",
               step, r);
  };
  // Writes a checkpoint when the model is sound: finite weights, and a finite loss on a fixed
  // validation batch. Returns whether it wrote one (rank 0's answer, on every rank).
  auto checkpoint = [&]() -> bool {
    check_ranks_agree();
    // ZeRO-1: every rank sends its moment slices to rank 0 (collective), then rank 0 alone decides and writes.
    const nn::NamedTensors opt_state = dp ? dp->full_optimizer_state() : nn::NamedTensors();
    if (!lead) return comm.broadcast(false);
    std::string why;
    if (!all_finite(model)) {
      why = "the model holds NaN/Inf weights";
    } else {
      const double probe = task.probe_loss();
      model.train();
      if (!std::isfinite(probe)) why = fmt::format("the model's loss on a validation batch is {}", probe);
    }
    if (!why.empty()) {
      const std::string kept = latest_checkpoint(run_dir);
      log(fmt::format("{}: step {}: {}; no checkpoint written ({})", task.name(), step, why,
                      kept.empty() ? std::string("the run has none yet")
                                   : fmt::format("the previous one, {}, is kept", fs::path(kept).filename().string())));
      write_metrics({{"step", step}, {"checkpoint_refused", true}, {"reason", why}});
      return comm.broadcast(false);
    }
    if (dp)
      save_checkpoint(run_dir, step, model, opt_state, opt.steps(), trainer_state(), ck_opt);
    else
      save_checkpoint(run_dir, step, model, opt, trainer_state(), ck_opt);
    return comm.broadcast(true);
  };
  auto validate = [&]() {
    if (!lead) return;  // evaluation runs on rank 0; the others wait at the next collective
    models::Json v = task.validate();
    model.train();
    const auto it = v.find(task.best_metric());
    if (it != v.end() && it->is_number() && it->get<double>() < best) best = it->get<double>();
    v["step"] = step;
    v["epoch"] = micro / task.batches_per_epoch();
    v["best"] = std::isfinite(best) ? models::Json(best) : models::Json();
    write_metrics(v);
    last_val = v;
    std::string line = fmt::format("{}: step {}/{} validation:", task.name(), step, cfg.steps);
    for (auto& [k, x] : v.items())
      if (k.rfind("val_", 0) == 0 && x.is_number()) line += fmt::format(" {} {:.4f}", k, x.get<double>());
    log(line);
  };

  const int64_t start_step = step;
  int64_t tokens_this_run = 0;
  TrainResult res;
  ProgressMeter progress(start_step, cfg.steps, cfg.progress && lead);  // rates, ETA, the live line
  double comm_wait_at_last_log = 0, comm_gather_at_last_log = 0;
  auto seconds_since = [](std::chrono::steady_clock::time_point a) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
  };
  res.start_step = start_step;
  double last_lr = sched.at(step + 1);
  int64_t consecutive_skips = 0, skipped_this_run = 0;
  while (step < cfg.steps) {
    if (hooks.stop_after_steps >= 0 && step >= hooks.stop_after_steps) break;
    ++step;
    if (cfg.kan_grid_update_every > 0 && (step - 1) % cfg.kan_grid_update_every == 0 &&
        (cfg.kan_grid_update_until == 0 || step <= cfg.kan_grid_update_until)) {
      const int64_t bpe = task.batches_per_epoch();
      const int64_t n = update_kan_grids(
          model, [&]() { task.train_loss(micro / bpe, micro % bpe); }, cfg.kan_grid_margin,
          comm.distributed() ? std::function<Tensor(const Tensor&)>([&](const Tensor& x) { return dist::gather_rows(comm, x); })
                             : std::function<Tensor(const Tensor&)>());
      set_batch_rows(0, 0);
      if (n > 0) {
        ++res.grid_updates;
        write_metrics({{"step", step}, {"grid_update", n}});
      }
    }
    for (const auto& ext : cfg.kan_grid_extend) {
      if (ext.step != step) continue;
      const int64_t bpe = task.batches_per_epoch();
      const int64_t n = update_kan_grids(
          model, [&]() { task.train_loss(micro / bpe, micro % bpe); }, cfg.kan_grid_margin, {}, ext.grid_size);
      set_batch_rows(0, 0);
      const int64_t reset = opt.reset_resized_moments();
      ++res.grid_extensions;
      log(fmt::format("{}: step {}: grid extension: {} B-spline layer(s) refitted on grid size {} ({} weight "
                      "tensors' Adam moments start again)",
                      task.name(), step, n, ext.grid_size, reset));
      write_metrics({{"step", step}, {"grid_extension", ext.grid_size}, {"layers", n}});
    }
    last_lr = sched.at(step);
    opt.set_lr(last_lr);
    opt.zero_grad();
    double loss_sum = 0;
    int64_t tokens = 0;
    bool bad = false;
    std::string why;
    for (int64_t a = 0; a < cfg.accumulation; ++a) {
      const int64_t bpe = task.batches_per_epoch();
      if (act_reg)  // each layer records this micro-batch's input (and drops any older one)
        for (auto& [name, k] : kan_layers) {
          k->set_capture_input(false);
          k->set_capture_input(true);
        }
      const bool grid_report =
          a == 0 && !grid_layers.empty() && (step % cfg.log_every == 0 || step == cfg.steps);
      if (grid_report && !act_reg)
        for (auto* k : grid_layers) k->set_capture_input(true);
      TaskLoss tl = task.train_loss(micro / bpe, micro % bpe);
      ++micro;
      if (grid_report) {
        for (auto* k : grid_layers) {
          if (k->captured_input().defined()) {
            const auto [outside, total] = k->count_outside_grid(k->captured_input());
            auto& c = grid_counts[k->basis()];
            c.first += static_cast<double>(outside);
            c.second += static_cast<double>(total);
          }
          if (!act_reg) k->set_capture_input(false);
        }
      }
      Tensor loss = tl.loss;
      double task_loss = loss.item();
      if (tl.aux.defined()) {
        // A data-parallel rank's auxiliary loss (MoE balance) is of its own rows: the ranks' mean
        // (as Megatron and DeepSpeed do), not the whole batch's value.
        loss = add(loss, comm.distributed() ? mul(tl.aux, 1.0 / comm.size()) : tl.aux);
      }
      if (act_reg) {  // of this micro-batch's activations (one process only)
        const Tensor reg = kan_activation_regularization_loss(model, cfg.kan_reg_rows, cfg.kan_reg_a, cfg.kan_reg_e);
        for (auto& [name, k] : kan_layers) k->set_capture_input(false);
        if (reg.defined()) loss = add(loss, mul(reg, cfg.kan_regularization));
      } else if (cfg.kan_regularization > 0 && lead) {  // a function of the weights: added once, on rank 0
        const Tensor reg = kan_regularization_loss(model, cfg.kan_reg_a, cfg.kan_reg_e);
        if (reg.defined()) loss = add(loss, mul(reg, cfg.kan_regularization));
      }
      if (hooks.loss_hook) loss = hooks.loss_hook(step, loss);
      double v = loss.item();
      int64_t mb_tokens = tl.tokens;
      if (comm.distributed()) {  // the decision below is taken on the whole batch's values, alike on every rank
        const std::vector<double> s = comm.sum({v, task_loss, static_cast<double>(tl.tokens)});
        v = s[0];
        task_loss = s[1];
        mb_tokens = static_cast<int64_t>(s[2]);
      }
      if (!std::isfinite(v) || !std::isfinite(task_loss)) {
        bad = true;
        why = fmt::format("loss is {}", v);
        set_batch_rows(0, 0);
        break;
      }
      if (cfg.optimizer_in_backward) opt.begin_step_in_backward();  // the update happens in this backward
      if (dp && a + 1 == cfg.accumulation) dp->begin_last_backward();
      if (loss.requires_grad()) mul(loss, 1.0 / static_cast<double>(cfg.accumulation)).backward();
      set_batch_rows(0, 0);
      loss_sum += task_loss;
      tokens += mb_tokens;
    }
    if (dp && !bad) dp->finish_backward();
    if (!bad && !cfg.optimizer_in_backward) {
      const double max_norm = cfg.clip_grad_norm > 0 ? cfg.clip_grad_norm : std::numeric_limits<double>::infinity();
      const double norm = dp ? dp->clip_grad_norm(max_norm) : optim::clip_grad_norm_(params, max_norm);
      if (!std::isfinite(norm)) {
        bad = true;
        why = fmt::format("gradient norm is {}", norm);
      }
    }
    tokens_this_run += tokens;
    if (bad) {
      opt.zero_grad();
      ++skipped;
      ++skipped_this_run;
      ++consecutive_skips;
      write_metrics({{"step", step}, {"skipped", true}, {"reason", why}});
      const std::string kept = latest_checkpoint(run_dir);
      const std::string kept_text =
          kept.empty() ? "the run has no checkpoint yet"
                       : fmt::format("the last checkpoint, {}, is kept", fs::path(kept).filename().string());
      if (cfg.on_nan == "stop") {
        log(fmt::format("{}: step {}: {}; stopping (on_nan=stop); {}", task.name(), step, why, kept_text));
        res.stopped_on_nan = true;
        res.failure = fmt::format("step {}: {} (on_nan=stop)", step, why);
        break;
      }
      log(fmt::format("{}: step {}: {}; skipping the step (on_nan=skip)", task.name(), step, why));
      const std::string diverged =
          divergence(cfg, step, step - start_step, consecutive_skips, skipped_this_run, why);
      if (!diverged.empty()) {
        res.diverged = true;
        res.failure = diverged;
        log(fmt::format("{}: the run diverged: {}; stopping; {}. Lower train.lr or tighten train.clip_grad_norm, "
                        "then {}",
                        task.name(), res.failure, kept_text,
                        kept.empty() ? "start the run again" : "resume from that checkpoint or start again"));
        write_metrics({{"step", step}, {"stopped", true}, {"reason", res.failure}});
        break;
      }
    } else if (cfg.optimizer_in_backward && !all_finite(model)) {
      // The update already happened: a non-finite gradient cannot be skipped any more.
      log(fmt::format("{}: step {}: the update inside backward (optimizer_in_backward) left NaN/Inf weights; "
                      "stopping; the last checkpoint is kept (rerun from it with a lower lr, or without "
                      "optimizer_in_backward so that such steps are skipped)",
                      task.name(), step));
      write_metrics({{"step", step}, {"stopped", true}, {"reason", "non-finite weights after the update"}});
      res.stopped_on_nan = true;
      res.failure = fmt::format("step {}: the update inside backward left NaN/Inf weights", step);
      break;
    } else {
      consecutive_skips = 0;
      if (dp)
        dp->step();
      else if (!cfg.optimizer_in_backward)
        opt.step();
      if (dp && cfg.dp_check_every > 0 && step % cfg.dp_check_every == 0) check_ranks_agree();
      win_loss += loss_sum / static_cast<double>(cfg.accumulation);
      win_count += 1;
      win_tokens += tokens;
    }

    if (step % cfg.log_every == 0 || step == cfg.steps) {
      const ProgressMeter::Window w = progress.close_window(step, tokens_this_run);
      if (win_count > 0) {
        const double mean = win_loss / static_cast<double>(win_count);
        res.last_loss = mean;
        res.has_loss = true;
        models::Json row = window_row(st, mean, last_lr, w, task.batches_per_epoch());
        if (dp) {
          const dist::CommStats& cs = dp->stats();
          row["world_size"] = comm.size();
          row["comm_wait_s"] = cs.wait_seconds - comm_wait_at_last_log;
          row["comm_bytes_per_step"] = cs.steps > 0 ? cs.bytes_sent / static_cast<double>(cs.steps) : 0.0;
          comm_wait_at_last_log = cs.wait_seconds;
          if (dp->zero1()) {
            row["comm_gather_s"] = cs.gather_seconds - comm_gather_at_last_log;
            comm_gather_at_last_log = cs.gather_seconds;
          }
        }
        for (const auto& [basis, c] : grid_counts) {  // the whole batch's inputs: summed over the ranks
          const std::vector<double> s = comm.distributed() ? comm.sum({c.first, c.second})
                                                           : std::vector<double>{c.first, c.second};
          if (s[1] > 0) row["out_of_grid_" + basis] = s[0] / s[1];
        }
        grid_counts.clear();
        const models::Json extras = task.log_extras();
        for (auto it = extras.begin(); it != extras.end(); ++it) row[it.key()] = it.value();
        write_metrics(row);
      }
      progress.print(progress_line(task.name() + (comm.distributed() ? fmt::format(" [{} ranks]", comm.size()) : ""),
                                   st, cfg.steps, task.batches_per_epoch(), last_lr, w));
      win_loss = 0;
      win_count = 0;
      win_tokens = 0;
    }
    const bool at_end = step == cfg.steps;
    const bool do_val = (cfg.val_every > 0 && step % cfg.val_every == 0) || at_end;
    const bool do_ck = (cfg.checkpoint_every > 0 && step % cfg.checkpoint_every == 0) || at_end;
    if (do_val || do_ck) progress.break_line();
    if (do_val || do_ck) {
      const auto o0 = std::chrono::steady_clock::now();
      if (do_val) validate();
      comm.idle_barrier();  // the other ranks sleep while rank 0 validates
      const bool written = do_ck ? checkpoint() : true;
      progress.add_overhead(seconds_since(o0));
      if (at_end && !written) {
        // The run's result would be the last checkpoint, which is not what it trained: a failure.
        res.diverged = true;
        res.failure = fmt::format("step {}: the final checkpoint was refused (the model gives NaN/Inf)", step);
      }
    }
  }
  progress.break_line();
  res.steps = step;
  res.world_size = comm.size();
  if (dp && dp->stats().steps > 0) {
    res.comm_wait_seconds = dp->stats().wait_seconds;
    res.comm_bytes_per_step = dp->stats().bytes_sent / static_cast<double>(dp->stats().steps);
  }
  res.skipped_steps = skipped;
  res.last_validation = last_val;
  res.seconds = progress.elapsed();
  res.tokens_per_second = res.seconds > 0 ? static_cast<double>(tokens_this_run) / res.seconds : 0.0;
  return res;
}

}  // namespace knot::train
