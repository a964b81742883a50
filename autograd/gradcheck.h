// Finite-difference gradient check in float64.
//
// For a function f of some tensors, compares the analytic gradient of L = Σ w ⊙ f(inputs)
// (w: fixed random weights, so every output element matters) with central differences
// (L(x+εe) − L(x−εe)) / 2ε. Inputs with up to `max_full` elements are checked element by element;
// larger ones along `directions` random unit directions v (compare ∇L·v with the directional
// difference), which keeps the cost at a few forward passes.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace knot {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-6;
  double rtol = 1e-4;
  int64_t max_full = 512;  // per input; above this the directional check is used
  int directions = 4;
  uint64_t seed = 1234;
};

using GradcheckFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Checks every input that requires grad (they must be f64 leaves). Returns "" on success,
// otherwise a message naming the input, the element and both values.
std::string gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs, const GradcheckOptions& opt = {});

}  // namespace knot
