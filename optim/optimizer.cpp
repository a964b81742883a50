// SGD, Adam/AdamW and gradient clipping (see optimizer.h).
#include "optim/optimizer.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "kernels/optim.h"
#include "ops/ops.h"

namespace knot::optim {

std::vector<ParamGroup> decay_groups(const nn::Module& m, double weight_decay) {
  ParamGroup decay{{}, weight_decay}, no_decay{{}, 0.0};
  for (auto& [name, p] : m.named_parameters()) {
    if (!p.requires_grad()) continue;
    (p.dim() >= 2 ? decay : no_decay).params.push_back(p);
  }
  return {decay, no_decay};
}

Optimizer::Optimizer(std::vector<ParamGroup> groups, double lr) : groups_(std::move(groups)), lr_(lr) {
  KNOT_CHECK(lr >= 0, "optimizer: learning rate must be >= 0, got {}", lr);
  for (const auto& g : groups_)
    for (const auto& p : g.params)
      KNOT_CHECK(p.defined() && p.is_leaf() && is_floating(p.dtype()),
                 "optimizer: parameters must be float leaf tensors, got {}", p.defined() ? p.desc() : "undefined");
}

Optimizer::~Optimizer() { set_step_in_backward(false); }

void Optimizer::step() {
  KNOT_CHECK(!in_backward_,
             "optimizer: step() while the step runs inside backward (set_step_in_backward): the updates "
             "already happened in backward; call begin_step_in_backward() before each backward instead");
  NoGradGuard ng;
  ++steps_;
  for (size_t gi = 0; gi < groups_.size(); ++gi)
    for (size_t i = 0; i < groups_[gi].params.size(); ++i) {
      const Tensor& p = groups_[gi].params[i];
      const Tensor g = p.grad();
      if (!g.defined()) continue;
      update(gi, i, g);
      p.bump_version();
    }
}

void Optimizer::set_step_in_backward(bool on) {
  if (on == in_backward_) return;
  if (on) {  // check every parameter before hooking any: a refusal leaves nothing half-done
    for (const auto& g : groups_)
      for (const auto& p : g.params)
        KNOT_CHECK(!p.impl()->post_accumulate_hook,
                   "optimizer: a parameter of shape {} already has a post-accumulate hook (is it in two "
                   "optimizers that step in backward?)",
                   shape_str(p.shape()));
  }
  in_backward_ = on;
  updated_at_.assign(groups_.size(), {});
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    updated_at_[gi].assign(groups_[gi].params.size(), -1);
    for (size_t i = 0; i < groups_[gi].params.size(); ++i) {
      const Tensor& p = groups_[gi].params[i];
      if (!on) {
        p.impl()->post_accumulate_hook = nullptr;
        continue;
      }
      p.zero_grad();  // from here on backward hands gradients to the hook
      p.impl()->post_accumulate_hook = [this, gi, i](const Tensor& leaf, const Tensor& g) {
        KNOT_CHECK(steps_ > 0, "optimizer: backward with the step inside backward, but begin_step_in_backward() "
                               "was never called");
        KNOT_CHECK(updated_at_[gi][i] != steps_,
                   "optimizer: the gradient of a parameter of shape {} completed twice in step {} (a parameter "
                   "shared between separately recomputed segments, or begin_step_in_backward() not called "
                   "before this backward)",
                   shape_str(leaf.shape()), steps_);
        updated_at_[gi][i] = steps_;
        NoGradGuard ng;
        update(gi, i, g.contiguous());
        leaf.bump_version();
        leaf.zero_grad();  // a gradient accumulated from before is consumed too
      };
    }
  }
}

void Optimizer::begin_step_in_backward() {
  KNOT_CHECK(in_backward_, "optimizer: begin_step_in_backward() without set_step_in_backward(true)");
  ++steps_;
}

void Optimizer::zero_grad() {
  for (auto& g : groups_)
    for (auto& p : g.params) p.zero_grad();
}

SGD::SGD(std::vector<ParamGroup> groups, double lr, double momentum, bool nesterov)
    : Optimizer(std::move(groups), lr), momentum_(momentum), nesterov_(nesterov) {
  KNOT_CHECK(momentum >= 0, "SGD: momentum must be >= 0, got {}", momentum);
  for (const auto& g : groups_) {
    bufs_.emplace_back();
    for (const auto& p : g.params) bufs_.back().push_back(momentum > 0 ? zeros_like(p) : Tensor());
  }
}

void SGD::update(size_t gi, size_t i, const Tensor& g) {
  kernels::sgd_step(groups_[gi].params[i], g, bufs_[gi][i], lr_, momentum_, groups_[gi].weight_decay, nesterov_);
}

Adam::Adam(std::vector<ParamGroup> groups, double lr, AdamOptions opt) : Optimizer(std::move(groups), lr), opt_(opt) {
  KNOT_CHECK(opt.beta1 >= 0 && opt.beta1 < 1 && opt.beta2 >= 0 && opt.beta2 < 1,
             "Adam: betas must be in [0, 1), got ({}, {})", opt.beta1, opt.beta2);
  KNOT_CHECK(opt.eps > 0, "Adam: eps must be > 0, got {}", opt.eps);
  for (const auto& g : groups_) {
    m_.emplace_back();
    v_.emplace_back();
    for (const auto& p : g.params) {
      m_.back().push_back(zeros_like(p));
      v_.back().push_back(zeros_like(p));
    }
  }
}

void Adam::update(size_t gi, size_t i, const Tensor& g) {
  const AdamHyper h{lr_, opt_.beta1, opt_.beta2, opt_.eps, groups_[gi].weight_decay, opt_.decoupled, steps_};
  kernels::adam_step(groups_[gi].params[i], g, m_[gi][i], v_[gi][i], h);
}

nn::NamedTensors Adam::state() const {
  nn::NamedTensors out;
  for (size_t gi = 0; gi < groups_.size(); ++gi)
    for (size_t i = 0; i < m_[gi].size(); ++i) {
      out.emplace_back(fmt::format("{}.{}.exp_avg", gi, i), m_[gi][i]);
      out.emplace_back(fmt::format("{}.{}.exp_avg_sq", gi, i), v_[gi][i]);
    }
  return out;
}

void Adam::shard(const std::vector<std::vector<Range>>& owned) {
  KNOT_CHECK(!sharded(), "Adam: shard() called twice");
  KNOT_CHECK(owned.size() == groups_.size(), "Adam: shard() needs one range list per group");
  NoGradGuard ng;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    KNOT_CHECK(owned[gi].size() == groups_[gi].params.size(), "Adam: shard() needs one range per parameter");
    for (size_t i = 0; i < owned[gi].size(); ++i) {
      const Range r = owned[gi][i];
      const int64_t n = groups_[gi].params[i].numel();
      KNOT_CHECK(0 <= r.begin && r.begin <= r.end && r.end <= n, "Adam: shard range [{}, {}) outside a parameter of {}",
                 r.begin, r.end, n);
      m_[gi][i] = m_[gi][i].reshape({-1}).slice(0, r.begin, r.end).clone();
      v_[gi][i] = v_[gi][i].reshape({-1}).slice(0, r.begin, r.end).clone();
    }
  }
  owned_ = owned;
}

void Adam::step_owned(const std::function<Tensor(size_t gi, size_t i)>& grad) {
  KNOT_CHECK(sharded(), "Adam: step_owned() without shard()");
  NoGradGuard ng;
  ++steps_;
  for (size_t gi = 0; gi < groups_.size(); ++gi)
    for (size_t i = 0; i < groups_[gi].params.size(); ++i) {
      const Range r = owned_[gi][i];
      if (r.end == r.begin) continue;
      const Tensor g = grad(gi, i);
      if (!g.defined()) continue;
      const Tensor& p = groups_[gi].params[i];
      // A view of the owned elements: the kernel writes the parameter itself.
      const Tensor pv = p.view({-1}).slice(0, r.begin, r.end);
      const AdamHyper h{lr_, opt_.beta1, opt_.beta2, opt_.eps, groups_[gi].weight_decay, opt_.decoupled, steps_};
      kernels::adam_step(pv, g, m_[gi][i], v_[gi][i], h);
      p.bump_version();
    }
}

int64_t Adam::reset_resized_moments() {
  KNOT_CHECK(!sharded(), "Adam: reset_resized_moments on a sharded optimizer");
  int64_t n = 0;
  for (size_t gi = 0; gi < groups_.size(); ++gi)
    for (size_t i = 0; i < m_[gi].size(); ++i) {
      const Tensor& p = groups_[gi].params[i];
      if (m_[gi][i].shape() == p.shape()) continue;
      m_[gi][i] = zeros_like(p);
      v_[gi][i] = zeros_like(p);
      ++n;
    }
  return n;
}

void Adam::load_state(const nn::NamedTensors& s, int64_t steps) {
  std::map<std::string, Tensor> by_name(s.begin(), s.end());
  NoGradGuard ng;
  if (!sharded()) reset_resized_moments();
  for (auto& [name, t] : state()) {
    auto it = by_name.find(name);
    KNOT_CHECK(it != by_name.end(), "Adam: optimizer state '{}' missing from the checkpoint", name);
    KNOT_CHECK(it->second.shape() == t.shape(), "Adam: optimizer state '{}' has shape {} but the parameter has {}",
               name, shape_str(it->second.shape()), shape_str(t.shape()));
    t.copy_(it->second.to(t.device()));
  }
  steps_ = steps;
}

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm) {
  NoGradGuard ng;
  double total = 0;
  for (const auto& p : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    const Tensor g64 = g.to(DType::f64);
    total += sum(mul(g64, g64)).item();
  }
  const double norm = std::sqrt(total);
  if (norm > max_norm && norm > 0) {
    const double s = max_norm / (norm + 1e-6);
    for (const auto& p : params)
      if (p.grad().defined()) p.grad().mul_(s);
  }
  return norm;
}

}  // namespace knot::optim
