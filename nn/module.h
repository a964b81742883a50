// nn::Module: named parameters, buffers and submodules with dotted names (the PyTorch state_dict
// convention: "encoder.layers.0.self_attn.q_proj.weight"), train/eval, zero_grad, to(device),
// parameter counts, and one-call save/load of all tensors as safetensors.
//
// Subclasses keep Tensor members and register them once in their constructor:
//   weight = register_parameter("weight", empty({out, in}));
// The module stores the same handle, so both see the same tensor; to(device) moves the data in
// place (same TensorImpl), so member handles stay valid.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace knot::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // A short type name for tables and error messages ("Linear", "KANLinear").
  virtual std::string type_name() const { return "Module"; }

  // Parameters (trainable leaves, requires_grad set) and buffers (saved but not trained), in
  // registration order, recursively with dotted names.
  NamedTensors named_parameters(bool recurse = true) const;
  std::vector<Tensor> parameters(bool recurse = true) const;
  NamedTensors named_buffers(bool recurse = true) const;
  // Parameters then buffers, each module's own before its children's (like PyTorch).
  NamedTensors state_dict() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }
  // Every module with its dotted path ("" for this one), depth first.
  std::vector<std::pair<std::string, const Module*>> named_modules() const;

  // Copies values into the existing tensors (converting dtype; shapes must match). With strict,
  // missing and unexpected names are errors too. Every module's check_state (a NaN or decreasing
  // KAN grid, ...) runs on the incoming tensors first. Every problem is listed in one error
  // message, and nothing is copied unless there is none.
  void load_state_dict(const NamedTensors& state, bool strict = true);

  int64_t num_parameters(bool only_trainable = true) const;
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();
  // Moves every parameter and buffer to `d` in place.
  void to(Device d);
  // Converts every float parameter and buffer to `t` in place.
  void to(DType t);

  // safetensors checkpoint of state_dict(); written to a temporary file and renamed, so an
  // existing checkpoint is never left half-written.
  void save(const std::string& path, const std::map<std::string, std::string>& metadata = {}) const;
  void load(const std::string& path, bool strict = true);

 protected:
  Tensor register_parameter(const std::string& name, const Tensor& t, bool trainable = true);
  Tensor register_buffer(const std::string& name, const Tensor& t);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }
  // Replaces the data of a registered parameter/buffer in place (same handle), e.g. after a grid update.
  static void assign(const Tensor& dst, const Tensor& src);
  // Checks the tensors load_state_dict is about to copy into this module (not its children):
  // `incoming(name)` is the incoming tensor of the module's own parameter or buffer `name`, or
  // undefined when the state has none. A problem is appended to `problems`; `prefix` is the
  // module's dotted path with a trailing dot ("layers.0."), for the messages.
  using IncomingTensor = std::function<Tensor(const std::string& name)>;
  virtual void check_state(const IncomingTensor& incoming, const std::string& prefix,
                           std::vector<std::string>& problems) const {}
  // A module whose tensor shapes follow a size stored with its weights (a B-spline layer after grid
  // extension: its grid size is the weights', not the config's) names here the shapes it takes from
  // `incoming` (own tensor name -> shape; empty: the shapes it has), and with `apply` re-allocates
  // those tensors (same handles, values to be copied in). load_state_dict checks the incoming shapes
  // against these and re-allocates only when every check has passed.
  virtual std::map<std::string, Shape> adopt_state_shapes(const IncomingTensor& incoming, bool apply) {
    return {};
  }

  bool training_ = true;

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> m);
  void check_name(const std::string& name) const;
  NamedTensors params_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

// A list of modules named "0", "1", ... (PyTorch's ModuleList).
class ModuleList : public Module {
 public:
  std::string type_name() const override { return "ModuleList"; }
  template <typename M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
    items_.push_back(m);
    return register_module(std::to_string(items_.size() - 1), std::move(m));
  }
  size_t size() const { return items_.size(); }
  const std::shared_ptr<Module>& operator[](size_t i) const { return items_.at(i); }
  template <typename M> M& at(size_t i) const { return dynamic_cast<M&>(*items_.at(i)); }

 private:
  std::vector<std::shared_ptr<Module>> items_;
};

}  // namespace knot::nn
