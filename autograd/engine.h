// The backward engine: iterative topological order (Kahn's algorithm over the reachable graph),
// a per-call map of pending gradients summed with +=, accumulation into leaf .grad, and release of
// each node's saved tensors after its backward unless retain_graph.
#pragma once

#include "core/tensor.h"

namespace knot {

void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph);

}  // namespace knot
