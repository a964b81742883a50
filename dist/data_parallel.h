// Gradient synchronisation of a data-parallel run, and ZeRO-1 (docs/distributed.md).
//
// Every rank holds the whole model and computes the gradient of its rows of the global batch; the
// task scales its loss so that the ranks' losses add up to the loss of the whole batch
// (train/trainer.h), so the gradients are *summed* here, not averaged.
//
// Buckets. The trainable parameters are packed, in reverse registration order (roughly the order in
// which backward completes them), into flat buckets of about `bucket_bytes` (one dtype each). With
// `overlap`, the last backward of a step hands each completed gradient to a post-accumulate hook
// (autograd/node.h) that copies it into its bucket; a full bucket is sent at once (buckets start in
// index order on every rank, as MPI requires) while backward goes on with earlier layers, and each
// hook call drives MPI's progress. finish_backward() sends what is left (parameters that got no
// gradient count as zeros, and stay without one when no rank had one) and waits.
//
//   ZeRO-0 (default): MPI all-reduce of each bucket; every rank gets every summed gradient in .grad
//     and steps its own full Adam (same bits everywhere: the trainer checks a parameter hash).
//   ZeRO-1 (train.zero=1): each bucket is padded to a multiple of the ranks and reduce-scattered;
//     rank r owns block r of every bucket: it keeps Adam moments for those elements only (optimizer
//     memory / N), clips with the norm summed over ranks, updates its elements and all-gathers the
//     parameters. Checkpoints gather the moments into today's full format on rank 0, so a run can
//     resume with another rank count, or with ZeRO off.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"
#include "dist/comm.h"
#include "nn/module.h"
#include "optim/optimizer.h"

namespace knot::dist {

struct DataParallelOptions {
  int64_t bucket_bytes = 8 << 20;
  bool overlap = true;  // send buckets during backward (false: all after backward)
  bool zero1 = false;
};

// Communication of the steps so far (for metrics and benchmarks).
struct CommStats {
  int64_t steps = 0;
  double bytes_sent = 0;       // bytes one rank sends, as a ring algorithm would: 2 (N-1)/N of the gradient
                               // bytes per all-reduce; (N-1)/N per reduce-scatter or all-gather (ZeRO-1)
  double wait_seconds = 0;     // time blocked after backward waiting for gradients (not hidden)
  double gather_seconds = 0;   // ZeRO-1: time of the parameter all-gather after the update
  int64_t buckets_in_backward = 0, buckets_after = 0;  // where the buckets were started
};

// Every rank's rows of x (a CPU tensor whose dimension 0 is rows; undefined = no rows on this rank),
// concatenated in rank order on every rank (collective). Used by the KAN grid update, which must see
// the whole batch's inputs.
Tensor gather_rows(const Comm& comm, const Tensor& x);

class DataParallel {
 public:
  // `opt` holds the parameters in its groups; with zero1 it is sharded here (its moments cut to this
  // rank's elements). Call after any checkpoint was loaded into `opt`.
  // model_params: the model's parameters in registration order (nn::Module::parameters()).
  DataParallel(const Comm& comm, optim::Adam& opt, const std::vector<Tensor>& model_params,
               DataParallelOptions options);
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  // Before the backward of a step's last micro-batch (earlier ones accumulate in .grad as usual).
  void begin_last_backward();
  // After it: every bucket sent and received. ZeRO-0: .grad holds the sum over ranks. ZeRO-1: this
  // rank's blocks hold their sums (read by clip/step); .grad is cleared.
  void finish_backward();
  // The global L2 norm of the summed gradient (the same on every rank), scaling it to max_norm when
  // above (as optim::clip_grad_norm_); returns the norm before clipping.
  double clip_grad_norm(double max_norm);
  // The optimizer step: ZeRO-0 opt.step(); ZeRO-1 this rank's elements, then the parameter all-gather.
  void step();
  // Drops the gradients of a skipped step (a collective-free local reset).
  void zero_grad();

  // ZeRO-1: the optimizer state in Adam::state()'s names and full shapes, gathered on rank 0
  // (collective: every rank calls it; other ranks get an empty list). ZeRO-0: opt.state().
  nn::NamedTensors full_optimizer_state() const;

  // SHA-256 of every parameter's bytes, the same on every rank when they agree.
  static std::string parameter_hash(const optim::Adam& opt);

  const CommStats& stats() const { return stats_; }
  bool zero1() const { return options_.zero1; }
  int64_t optimizer_elements() const;  // moment elements this rank keeps (x 2 tensors)

 private:
  struct Slot {
    Tensor p;
    size_t gi = 0, i = 0;      // Adam group and index
    size_t bucket = 0;
    int64_t offset = 0;        // in the bucket
    int64_t numel = 0;
    bool ready = false;        // gradient copied in this step
    bool has_grad = false;     // this rank had a gradient this step
  };
  struct Bucket {
    DType dtype = DType::f32;
    std::vector<size_t> slots;
    int64_t numel = 0, padded = 0, block = 0;
    Tensor flat;  // (padded,)
    Request req;
    size_t ready = 0;
    bool launched = false;
  };
  void on_grad(size_t slot, const Tensor& g);
  void launch_ready();
  void launch(size_t b);
  void install_hooks();
  void remove_hooks();
  Tensor owned_grad(size_t gi, size_t i) const;

  const Comm& comm_;
  optim::Adam& opt_;
  DataParallelOptions options_;
  std::vector<Slot> slots_;
  std::vector<Tensor> params_;  // the slots' parameters
  std::vector<Bucket> buckets_;
  std::vector<std::vector<size_t>> slot_of_;  // [gi][i] -> slot
  std::vector<uint8_t> any_grad_;             // per slot: some rank had a gradient this step
  size_t next_launch_ = 0;
  bool in_backward_ = false, hooked_ = false;
  CommStats stats_;
};

}  // namespace knot::dist
