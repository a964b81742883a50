// Optimizers over parameter groups (each group has its own weight decay, so norms and biases
// can be excluded from decay), and global-norm gradient clipping.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "nn/module.h"

namespace knot::optim {

struct ParamGroup {
  std::vector<Tensor> params;
  double weight_decay = 0.0;
};

// Two groups from a module: decay for weights of dim >= 2, none for biases, norms and other
// 1-D parameters (the usual AdamW recipe).
std::vector<ParamGroup> decay_groups(const nn::Module& m, double weight_decay);

class Optimizer {
 public:
  explicit Optimizer(std::vector<ParamGroup> groups, double lr);
  virtual ~Optimizer();
  Optimizer(const Optimizer&) = delete;  // parameters' hooks point at this object
  Optimizer& operator=(const Optimizer&) = delete;
  // Applies the update to every parameter that has a gradient.
  void step();
  void zero_grad();

  // The step inside backward (saves memory): with it on, each parameter is updated the moment
  // backward has its complete gradient, and that gradient is dropped instead of being stored in
  // .grad, so the gradients of the whole model are never alive at once. That lowers the peak when
  // the peak falls inside backward (e.g. with activation checkpointing, where activations are few);
  // where it falls at the end of forward (all activations alive) it changes nothing. Per step: begin_step_in_backward(); loss.backward();
  // (no step(), no zero_grad()). The updates are the ones step() would make. Not for anything that
  // needs all gradients before any update: gradient accumulation, global-norm clipping, skipping a
  // step on a non-finite gradient. A parameter whose gradient completes twice in one step (used in
  // two separately recomputed segments) is an error, not a double update.
  void set_step_in_backward(bool on);
  bool step_in_backward() const { return in_backward_; }
  void begin_step_in_backward();
  double lr() const { return lr_; }
  void set_lr(double lr) { lr_ = lr; }
  int64_t steps() const { return steps_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }

 protected:
  // Updates parameter i of group gi with gradient g (steps_ already counts this step).
  virtual void update(size_t gi, size_t i, const Tensor& g) = 0;

  std::vector<ParamGroup> groups_;
  double lr_;
  int64_t steps_ = 0;

 private:
  bool in_backward_ = false;
  std::vector<std::vector<int64_t>> updated_at_;  // step at which each parameter was last updated in backward
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<ParamGroup> groups, double lr, double momentum = 0.0, bool nesterov = false);
  SGD(const std::vector<Tensor>& params, double lr, double momentum = 0.0, double weight_decay = 0.0)
      : SGD({ParamGroup{params, weight_decay}}, lr, momentum) {}

 private:
  void update(size_t gi, size_t i, const Tensor& g) override;
  double momentum_;
  bool nesterov_;
  std::vector<std::vector<Tensor>> bufs_;
};

struct AdamOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  bool decoupled = true;  // AdamW; false = Adam with L2 added to the gradient
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<ParamGroup> groups, double lr, AdamOptions opt = {});
  Adam(const std::vector<Tensor>& params, double lr, double weight_decay = 0.0, AdamOptions opt = {})
      : Adam({ParamGroup{params, weight_decay}}, lr, opt) {}
  // Moment estimates, named "<group>.<index>.exp_avg" / ".exp_avg_sq", for checkpoints.
  nn::NamedTensors state() const;
  // Loads moments saved by state(). Moments of a parameter whose shape changed since this optimizer
  // was built (a B-spline layer that took a larger grid from the checkpoint) are re-allocated first.
  void load_state(const nn::NamedTensors& s, int64_t steps);
  // After a parameter changed shape (grid extension, KANLinear::refine_grid): its moments start again
  // from zero; the other parameters keep theirs. Returns how many parameters were reset. Not for a
  // sharded optimizer.
  int64_t reset_resized_moments();

  // ZeRO-1 (dist/data_parallel.h): this process keeps the moments of elements [begin, end) of each
  // parameter's flattened values only (owned[gi][i]; the moments held so far are cut to that range),
  // so the optimizer state of N ranks together is one copy. state() then gives those slices.
  struct Range {
    int64_t begin = 0, end = 0;
  };
  void shard(const std::vector<std::vector<Range>>& owned);
  bool sharded() const { return !owned_.empty(); }
  Range owned(size_t gi, size_t i) const { return owned_.at(gi).at(i); }
  const Tensor& exp_avg(size_t gi, size_t i) const { return m_.at(gi).at(i); }
  const Tensor& exp_avg_sq(size_t gi, size_t i) const { return v_.at(gi).at(i); }
  // One step of a sharded optimizer: grad(gi, i) is the gradient of the owned elements of parameter
  // (gi, i) as a 1-D tensor (undefined: no gradient this step, no update, as in step()); the owned
  // elements of the parameter are updated in place.
  void step_owned(const std::function<Tensor(size_t gi, size_t i)>& grad);

 private:
  void update(size_t gi, size_t i, const Tensor& g) override;
  AdamOptions opt_;
  std::vector<std::vector<Tensor>> m_, v_;
  std::vector<std::vector<Range>> owned_;  // empty unless shard() was called
};

// Scales all gradients so that their global L2 norm is at most max_norm; returns the norm
// before clipping.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm);

}  // namespace knot::optim
