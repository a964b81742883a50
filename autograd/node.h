// Graph nodes of the define-by-run autograd.
//
// Every op that records a graph creates one Node for its output. `next[i]` is the node that gets
// the gradient of input i (its grad_fn, or the AccumulateGrad node of a leaf; nullptr when input i
// needs no gradient). Ops write their backward as a lambda that captures SavedTensors; releasing
// the node (after its backward, unless retain_graph) destroys the lambda and so frees exactly what
// was saved.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace knot {

// A tensor kept for backward, with the storage version it had when saved: an in-place write to it
// before backward is caught and reported instead of silently giving a wrong gradient.
class SavedTensor {
 public:
  SavedTensor() = default;
  SavedTensor(const Tensor& t) : t_(t), version_(t.defined() ? t.version() : 0) {}  // NOLINT
  // Returns the tensor; throws if it was modified in place since it was saved.
  const Tensor& get(const char* op) const;
  bool defined() const { return t_.defined(); }

 private:
  Tensor t_;
  uint64_t version_ = 0;
};

struct Node {
  virtual ~Node() = default;
  virtual const char* name() const = 0;
  // grad_out has the shape of this node's output; returns one gradient per input
  // (an undefined Tensor where an input gets none).
  virtual std::vector<Tensor> apply(const Tensor& grad_out) = 0;
  // Frees saved tensors. A released node that is applied again throws.
  virtual void release() {}

  std::vector<std::shared_ptr<Node>> next;
};

// Adds incoming gradients into a leaf's .grad, then calls the leaf's post_accumulate_hook if it has
// one (with .grad empty, the hook gets the gradient instead: core/tensor.h).
struct AccumulateGrad final : Node {
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> l) : leaf(std::move(l)) {}
  const char* name() const override { return "AccumulateGrad"; }
  std::vector<Tensor> apply(const Tensor& grad_out) override;
  std::shared_ptr<TensorImpl> leaf;
};

using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_out)>;

// A node whose backward is a lambda (the usual way ops define their gradient).
struct FunctionNode final : Node {
  FunctionNode(const char* op, BackwardFn fn, std::vector<Shape> input_shapes)
      : op_(op), fn_(std::move(fn)), input_shapes_(std::move(input_shapes)) {}
  const char* name() const override { return op_; }
  std::vector<Tensor> apply(const Tensor& grad_out) override;
  void release() override { fn_ = nullptr; }

 private:
  const char* op_;
  BackwardFn fn_;
  std::vector<Shape> input_shapes_;
};

// True when grad mode is on and any of the tensors requires grad.
bool needs_grad(std::initializer_list<Tensor> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

// Records `out` as produced by op from `inputs` with the given backward. Does nothing when no
// input requires grad or grad mode is off. Returns out.
const Tensor& attach_grad(const Tensor& out, const char* op, const std::vector<Tensor>& inputs, BackwardFn fn);

// The node that receives gradients for `t`: its grad_fn, or the (cached) AccumulateGrad of a leaf
// that requires grad; nullptr otherwise.
std::shared_ptr<Node> gradient_edge(const Tensor& t);

}  // namespace knot
