// Optimizers over parameter groups (each group has its own weight decay, so norms and biases
// can be excluded from decay), and global-norm gradient clipping.
#pragma once

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
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  void zero_grad();
  double lr() const { return lr_; }
  void set_lr(double lr) { lr_ = lr; }
  int64_t steps() const { return steps_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }

 protected:
  std::vector<ParamGroup> groups_;
  double lr_;
  int64_t steps_ = 0;
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<ParamGroup> groups, double lr, double momentum = 0.0, bool nesterov = false);
  SGD(const std::vector<Tensor>& params, double lr, double momentum = 0.0, double weight_decay = 0.0)
      : SGD({ParamGroup{params, weight_decay}}, lr, momentum) {}
  void step() override;

 private:
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
  void step() override;
  // Moment estimates, named "<group>.<index>.exp_avg" / ".exp_avg_sq", for checkpoints.
  nn::NamedTensors state() const;
  void load_state(const nn::NamedTensors& s, int64_t steps);

 private:
  AdamOptions opt_;
  std::vector<std::vector<Tensor>> m_, v_;
};

// Scales all gradients so that their global L2 norm is at most max_norm; returns the norm
// before clipping.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm);

}  // namespace knot::optim
