// nn::Module (see module.h).
#include "nn/module.h"

#include <cmath>

#include <set>

#include "autograd/grad_mode.h"
#include "core/safetensors.h"
#include "ops/ops.h"

namespace knot::nn {

void Module::check_name(const std::string& name) const {
  KNOT_CHECK(!name.empty() && name.find('.') == std::string::npos,
             "{}: bad member name '{}' (must be non-empty and contain no '.')", type_name(), name);
  auto taken = [&](const auto& list) {
    for (const auto& [n, _] : list)
      if (n == name) return true;
    return false;
  };
  KNOT_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_), "{}: name '{}' is registered twice",
             type_name(), name);
}

Tensor Module::register_parameter(const std::string& name, const Tensor& t, bool trainable) {
  check_name(name);
  KNOT_CHECK(t.defined(), "{}: parameter '{}' is undefined", type_name(), name);
  KNOT_CHECK(t.is_leaf(), "{}: parameter '{}' must be a leaf tensor (detach it first)", type_name(), name);
  if (trainable) t.requires_grad_(true);
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, const Tensor& t) {
  check_name(name);
  KNOT_CHECK(t.defined(), "{}: buffer '{}' is undefined", type_name(), name);
  buffers_.emplace_back(name, t);
  return t;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> m) {
  check_name(name);
  KNOT_CHECK(m != nullptr, "{}: submodule '{}' is null", type_name(), name);
  m->train(training_);
  children_.emplace_back(name, std::move(m));
}

NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors out = params_;
  if (recurse)
    for (const auto& [cn, c] : children_)
      for (auto& [n, t] : c->named_parameters(true)) out.emplace_back(cn + "." + n, t);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters(recurse)) out.push_back(t);
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors out = buffers_;
  if (recurse)
    for (const auto& [cn, c] : children_)
      for (auto& [n, t] : c->named_buffers(true)) out.emplace_back(cn + "." + n, t);
  return out;
}

NamedTensors Module::state_dict() const {
  NamedTensors out = params_;
  out.insert(out.end(), buffers_.begin(), buffers_.end());
  for (const auto& [cn, c] : children_)
    for (auto& [n, t] : c->state_dict()) out.emplace_back(cn + "." + n, t);
  return out;
}

std::vector<std::pair<std::string, const Module*>> Module::named_modules() const {
  std::vector<std::pair<std::string, const Module*>> out{{"", this}};
  for (const auto& [cn, c] : children_)
    for (auto& [n, m] : c->named_modules()) out.emplace_back(n.empty() ? cn : cn + "." + n, m);
  return out;
}

void Module::assign(const Tensor& dst, const Tensor& src) {
  // In place on the TensorImpl: every handle to dst sees the new data.
  const Tensor v = src.detach().contiguous();
  TensorImpl* im = dst.impl();
  im->storage = v.storage();
  im->shape = v.shape();
  im->strides = v.strides();
  im->offset = v.offset();
  im->dtype = v.dtype();
  im->grad.reset();
}

void Module::load_state_dict(const NamedTensors& state, bool strict) {
  std::vector<std::string> problems;
  std::set<std::string> seen;
  NamedTensors mine = state_dict();
  std::map<std::string, Tensor> by_name;
  for (const auto& [n, t] : state) by_name[n] = t;
  NoGradGuard ng;
  // Shapes that modules take from the incoming state (adopt_state_shapes), by full name.
  std::map<std::string, Shape> adopted;
  std::vector<std::pair<Module*, IncomingTensor>> adopters;
  for (const auto& [path, cm] : named_modules()) {
    auto* m = const_cast<Module*>(cm);  // this module is ours to change; named_modules is const
    const std::string prefix = path.empty() ? "" : path + ".";
    IncomingTensor incoming = [&by_name, prefix](const std::string& name) {
      auto it = by_name.find(prefix + name);
      return it == by_name.end() ? Tensor() : it->second;
    };
    const auto shapes = m->adopt_state_shapes(incoming, /*apply=*/false);
    if (shapes.empty()) continue;
    for (const auto& [name, shape] : shapes) adopted[prefix + name] = shape;
    adopters.emplace_back(m, incoming);
  }
  std::vector<std::pair<std::string, std::string>> nonfinite;  // (name, problem)
  for (auto& [n, t] : mine) {
    auto it = by_name.find(n);
    if (it == by_name.end()) {
      if (strict) problems.push_back(fmt::format("missing '{}' {}", n, shape_str(t.shape())));
      continue;
    }
    seen.insert(n);
    const Tensor& src = it->second;
    const auto ad = adopted.find(n);
    if (src.shape() != (ad == adopted.end() ? t.shape() : ad->second)) {
      problems.push_back(fmt::format("'{}' has shape {} in the checkpoint but {} in the model", n,
                                     shape_str(src.shape()), shape_str(t.shape())));
      continue;
    }
    if (is_floating(src.dtype()) != is_floating(t.dtype())) {
      problems.push_back(fmt::format("'{}' has dtype {} in the checkpoint but {} in the model", n,
                                     dtype_name(src.dtype()), dtype_name(t.dtype())));
      continue;
    }
    // A weight that is NaN/Inf makes every output NaN: refuse it here, naming it, rather than let
    // translate print <sos> forever or predict print nan with exit 0.
    if (is_floating(src.dtype())) {
      int64_t bad = 0;
      for (double v : src.to(DType::f64).contiguous().to(Device::cpu()).to_vector<double>()) bad += !std::isfinite(v);
      if (bad > 0) nonfinite.emplace_back(n, fmt::format("'{}' holds {} NaN/Inf value(s) of {}", n, bad, src.numel()));
    }
  }
  if (strict)
    for (const auto& [n, t] : state)
      if (!seen.count(n)) problems.push_back(fmt::format("unexpected '{}' {}", n, shape_str(t.shape())));
  if (problems.empty()) {
    for (const auto& [path, m] : named_modules()) {
      const std::string prefix = path.empty() ? "" : path + ".";
      m->check_state(
          [&](const std::string& name) {
            auto it = by_name.find(prefix + name);
            return it == by_name.end() ? Tensor() : it->second;
          },
          prefix, problems);
    }
  }
  // Non-finite values, unless a module's own check already named the tensor (a grid says more).
  for (const auto& [n, msg] : nonfinite) {
    bool named = false;
    for (const auto& p : problems) named |= p.find("'" + n + "'") != std::string::npos;
    if (!named) problems.push_back(msg);
  }
  KNOT_CHECK(problems.empty(), "load_state_dict ({}): {} problem(s): {}", type_name(), problems.size(),
             fmt::join(problems, "; "));
  // Re-allocated under the same handles, so `mine` sees the new shapes.
  for (auto& [m, incoming] : adopters) m->adopt_state_shapes(incoming, /*apply=*/true);
  for (auto& [n, t] : mine) {
    auto it = by_name.find(n);
    if (it != by_name.end()) t.detach().copy_(it->second.to(t.device()));
  }
}

int64_t Module::num_parameters(bool only_trainable) const {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters())
    if (!only_trainable || t.requires_grad()) n += t.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

void Module::zero_grad() {
  for (auto& t : parameters()) t.zero_grad();
}

void Module::to(Device d) {
  for (auto& [n, t] : state_dict())
    if (t.device() != d) assign(t, t.detach().to(d));
}

void Module::to(DType dt) {
  KNOT_CHECK(is_floating(dt), "to: modules convert to float dtypes only, got {}", dtype_name(dt));
  for (auto& [n, t] : state_dict())
    if (is_floating(t.dtype()) && t.dtype() != dt) assign(t, t.detach().to(dt));
}

void Module::save(const std::string& path, const std::map<std::string, std::string>& metadata) const {
  save_safetensors(path, state_dict(), metadata);
}

void Module::load(const std::string& path, bool strict) {
  const SafetensorsFile f = load_safetensors(path);
  try {
    load_state_dict(f.tensors, strict);
  } catch (const Error& e) {
    KNOT_FAIL("load: {}: {}", path, e.what());
  }
}

}  // namespace knot::nn
