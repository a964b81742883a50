// Backward engine (see engine.h).
#include "autograd/engine.h"

#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "kernels/elementwise.h"

namespace knot {

void run_backward(const Tensor& root, const Tensor& grad_in, bool retain_graph) {
  KNOT_CHECK(root.requires_grad(),
             "backward: the tensor does not require grad (no input of its computation has requires_grad "
             "set, or it was computed under NoGradGuard)");
  Tensor grad = grad_in;
  if (!grad.defined()) {
    KNOT_CHECK(root.numel() == 1,
               "backward: a gradient can be implied only for a one-element output; this output has shape "
               "{}, so pass its gradient explicitly",
               shape_str(root.shape()));
    grad = ones(root.shape(), root.dtype(), root.device());
  }
  KNOT_CHECK(grad.shape() == root.shape(), "backward: gradient shape {} differs from output shape {}",
             shape_str(grad.shape()), shape_str(root.shape()));

  NoGradGuard no_grad;
  std::shared_ptr<Node> start = gradient_edge(root);

  // Count, for every reachable node, how many edges point into it (iteratively: deep graphs
  // must not overflow the stack).
  std::unordered_map<Node*, int> deps;
  {
    std::vector<Node*> stack{start.get()};
    std::unordered_set<Node*> seen{start.get()};
    while (!stack.empty()) {
      Node* n = stack.back();
      stack.pop_back();
      for (const auto& nx : n->next) {
        if (!nx) continue;
        ++deps[nx.get()];
        if (seen.insert(nx.get()).second) stack.push_back(nx.get());
      }
    }
  }

  // Kahn's algorithm: a node runs once all its incoming gradients have been summed.
  std::unordered_map<Node*, Tensor> pending;
  pending[start.get()] = grad;
  std::vector<std::shared_ptr<Node>> ready{start};
  while (!ready.empty()) {
    std::shared_ptr<Node> node = std::move(ready.back());
    ready.pop_back();
    auto it = pending.find(node.get());
    Tensor g = it != pending.end() ? std::move(it->second) : Tensor();
    if (it != pending.end()) pending.erase(it);
    std::vector<Tensor> grads;
    if (g.defined()) grads = node->apply(g);
    g = Tensor();
    if (!retain_graph) node->release();
    for (size_t i = 0; i < node->next.size(); ++i) {
      const auto& nx = node->next[i];
      if (!nx) continue;
      if (i < grads.size() && grads[i].defined()) {
        Tensor& slot = pending[nx.get()];
        // Two paths into one node: their gradients are summed by the add kernel (the engine records
        // no graph, so it needs no differentiable op; autograd sits below ops/).
        slot = slot.defined() ? kernels::binary(BinaryOp::add, slot, grads[i]) : grads[i];
      }
      if (--deps[nx.get()] == 0) ready.push_back(nx);
    }
  }
}

void Tensor::backward(const Tensor& grad, bool retain_graph) const { run_backward(*this, grad, retain_graph); }

}  // namespace knot
