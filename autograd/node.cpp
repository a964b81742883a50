// SavedTensor version check, FunctionNode/AccumulateGrad, and graph recording.
#include "autograd/node.h"

#include "autograd/grad_mode.h"

namespace knot {

namespace {
thread_local bool t_grad_enabled = true;
}
bool GradMode::enabled() { return t_grad_enabled; }
void GradMode::set_enabled(bool on) { t_grad_enabled = on; }

const Tensor& SavedTensor::get(const char* op) const {
  KNOT_CHECK(!t_.defined() || t_.version() == version_,
             "{}: a tensor saved for backward was modified in place (saved at version {}, now {}); "
             "clone it before the in-place edit",
             op, version_, t_.version());
  return t_;
}

std::vector<Tensor> FunctionNode::apply(const Tensor& grad_out) {
  KNOT_CHECK(fn_ != nullptr,
             "{}: backward through this graph a second time, but its saved tensors were freed after "
             "the first backward; pass retain_graph=true to the first backward",
             op_);
  std::vector<Tensor> grads = fn_(grad_out);
  KNOT_CHECK(grads.size() == input_shapes_.size(), "{}: backward returned {} gradients for {} inputs", op_,
             grads.size(), input_shapes_.size());
  for (size_t i = 0; i < grads.size(); ++i)
    KNOT_CHECK(!grads[i].defined() || grads[i].shape() == input_shapes_[i],
               "{}: backward gave a gradient of shape {} for input {} of shape {}", op_,
               shape_str(grads[i].shape()), i, shape_str(input_shapes_[i]));
  return grads;
}

std::vector<Tensor> AccumulateGrad::apply(const Tensor& g) {
  if (leaf->post_accumulate_hook && !leaf->grad) {
    // The hook consumes the complete gradient now; nothing is stored (and nothing copied).
    const auto hook = leaf->post_accumulate_hook;  // the hook may clear itself
    hook(Tensor(leaf), g);
    return {};
  }
  if (!leaf->grad) {
    // Own the buffer: backward may hand the same tensor to several inputs.
    const Tensor c = g.contiguous();
    leaf->grad = (c.is_same(g) ? g.clone() : c).impl_ptr();
  } else {
    Tensor(leaf->grad).add_(g);
  }
  if (leaf->post_accumulate_hook) {
    const auto hook = leaf->post_accumulate_hook;
    hook(Tensor(leaf), Tensor(leaf->grad));
  }
  return {};
}

bool needs_grad(std::initializer_list<Tensor> inputs) {
  if (!GradMode::enabled()) return false;
  for (const auto& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!GradMode::enabled()) return false;
  for (const auto& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

std::shared_ptr<Node> gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return nullptr;
  TensorImpl* im = t.impl();
  if (im->grad_fn) return im->grad_fn;
  auto acc = im->grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t.impl_ptr());
    im->grad_accumulator = acc;
  }
  return acc;
}

const Tensor& attach_grad(const Tensor& out, const char* op, const std::vector<Tensor>& inputs, BackwardFn fn) {
  if (!needs_grad(inputs)) return out;
  std::vector<Shape> shapes;
  shapes.reserve(inputs.size());
  for (const auto& t : inputs) shapes.push_back(t.defined() ? t.shape() : Shape{});
  auto node = std::make_shared<FunctionNode>(op, std::move(fn), std::move(shapes));
  node->next.reserve(inputs.size());
  for (const auto& t : inputs) node->next.push_back(gradient_edge(t));
  out.impl()->requires_grad = true;
  out.impl()->grad_fn = std::move(node);
  return out;
}

}  // namespace knot
