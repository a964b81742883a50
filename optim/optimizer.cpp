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

void SGD::step() {
  NoGradGuard ng;
  ++steps_;
  for (size_t gi = 0; gi < groups_.size(); ++gi)
    for (size_t i = 0; i < groups_[gi].params.size(); ++i) {
      const Tensor& p = groups_[gi].params[i];
      const Tensor g = p.grad();
      if (!g.defined()) continue;
      kernels::sgd_step(p, g, bufs_[gi][i], lr_, momentum_, groups_[gi].weight_decay, nesterov_);
      p.bump_version();
    }
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

void Adam::step() {
  NoGradGuard ng;
  ++steps_;
  for (size_t gi = 0; gi < groups_.size(); ++gi)
    for (size_t i = 0; i < groups_[gi].params.size(); ++i) {
      const Tensor& p = groups_[gi].params[i];
      const Tensor g = p.grad();
      if (!g.defined()) continue;
      const AdamHyper h{lr_, opt_.beta1, opt_.beta2, opt_.eps, groups_[gi].weight_decay, opt_.decoupled, steps_};
      kernels::adam_step(p, g, m_[gi][i], v_[gi][i], h);
      p.bump_version();
    }
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

void Adam::load_state(const nn::NamedTensors& s, int64_t steps) {
  std::map<std::string, Tensor> by_name(s.begin(), s.end());
  NoGradGuard ng;
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
