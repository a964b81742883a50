// KAN stack (see kan.h).
#include "nn/kan.h"

#include "autograd/grad_mode.h"
#include "ops/ops.h"

namespace knot::nn {

KAN::KAN(const std::vector<int64_t>& widths, const std::string& basis, const nlohmann::json& options) {
  KNOT_CHECK(widths.size() >= 2, "KAN: widths must be [in, hidden…, out] with at least two entries, got {}",
             widths.size());
  layers = register_module("layers", std::make_shared<ModuleList>());
  for (size_t i = 0; i + 1 < widths.size(); ++i) layers->push_back(make_kan_layer(basis, widths[i], widths[i + 1], options));
}

Tensor KAN::forward(const Tensor& x, bool update_grid) {
  Tensor h = x;
  for (size_t i = 0; i < layers->size(); ++i) {
    KANLayer& l = layer(i);
    if (update_grid) {
      try {
        l.update_grid(h);
      } catch (const Error& e) {
        KNOT_FAIL("grid update of KAN layer 'layers.{}': {}", i, e.what());
      }
    }
    h = l.forward(h);
  }
  return h;
}

void KAN::refine_grid(const Tensor& x, int64_t grid_size, double margin) {
  NoGradGuard ng;
  Tensor h = x;
  for (size_t i = 0; i < layers->size(); ++i) {
    KANLayer& l = layer(i);
    const Tensor next = l.forward(h);  // the next layer's input, from this layer before it changes
    try {
      l.refine_grid(h, grid_size, margin);
    } catch (const Error& e) {
      KNOT_FAIL("grid extension of KAN layer 'layers.{}': {}", i, e.what());
    }
    h = next;
  }
}

Tensor KAN::regularization_loss(double a, double e) const {
  Tensor total;
  for (size_t i = 0; i < layers->size(); ++i) {
    const Tensor r = layer(i).regularization_loss(a, e);
    total = total.defined() ? add(total, r) : r;
  }
  return total;
}

}  // namespace knot::nn
