// Activation checkpointing (see checkpoint.h).
#include "autograd/checkpoint.h"

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/node.h"

namespace knot {
namespace {

constexpr const char* kOp = "checkpoint";

// Sets a generator to `replay` for a scope and then back to the state it had on entry, also when
// fn throws.
class ReplayGenerator {
 public:
  ReplayGenerator(Generator& g, const Generator::State& replay) : g_(g), resume_(g.state()) { g_.set_state(replay); }
  ~ReplayGenerator() { g_.set_state(resume_); }
  ReplayGenerator(const ReplayGenerator&) = delete;
  ReplayGenerator& operator=(const ReplayGenerator&) = delete;

 private:
  Generator& g_;
  Generator::State resume_;
};

}  // namespace

Tensor checkpoint(const CheckpointFn& fn, const std::vector<Tensor>& inputs, Generator* gen) {
  KNOT_CHECK(fn != nullptr, "checkpoint: no function given");
  if (!needs_grad(inputs)) return fn(inputs);

  Generator& g = gen ? *gen : default_generator();
  const Generator::State rng_before = g.state();
  Tensor out;
  {
    NoGradGuard no_grad;
    out = fn(inputs);
  }
  KNOT_CHECK(out.defined(), "checkpoint: the function returned an undefined tensor");
  KNOT_CHECK(is_floating(out.dtype()), "checkpoint: the function must return a float tensor, got {}", out.desc());
  // A fresh TensorImpl: fn may return one of its inputs (or a tensor shared with one), whose
  // autograd fields must not be overwritten by the node attached below.
  out = out.detach();

  std::vector<SavedTensor> saved(inputs.begin(), inputs.end());
  std::vector<bool> wants_grad(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) wants_grad[i] = inputs[i].defined() && inputs[i].requires_grad();
  Generator* gp = &g;
  const Shape out_shape = out.shape();

  return attach_grad(out, kOp, inputs, [fn, saved, wants_grad, gp, rng_before, out_shape](const Tensor& grad_out) {
    const size_t n = saved.size();
    // Leaves over the same storage: the inner backward stops at them, so their .grad is exactly the
    // gradient this node owes each input (summed over fn's uses of it), and nothing reaches the
    // outer graph's nodes directly.
    std::vector<Tensor> leaves(n);
    for (size_t i = 0; i < n; ++i) {
      const Tensor& x = saved[i].get(kOp);
      if (!x.defined()) continue;
      leaves[i] = x.detach();
      if (wants_grad[i]) leaves[i].requires_grad_(true);
    }
    Tensor y;
    {
      ReplayGenerator replay(*gp, rng_before);
      EnableGradGuard grad_on;
      y = fn(leaves);
    }
    KNOT_CHECK(y.defined() && y.shape() == out_shape,
               "checkpoint: the recomputed output has shape {} but the forward gave {} (fn must be deterministic)",
               y.defined() ? shape_str(y.shape()) : std::string("undefined"), shape_str(out_shape));
    std::vector<Tensor> grads(n);
    // An output that does not depend on any leaf or parameter has no graph: every gradient is zero.
    if (!y.requires_grad()) return grads;
    run_backward(y, grad_out, /*retain_graph=*/false);
    for (size_t i = 0; i < n; ++i)
      if (wants_grad[i]) grads[i] = leaves[i].grad();
    return grads;
  });
}

}  // namespace knot
