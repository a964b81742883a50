// The projection factory (see projection.h): "mlp" builds a Linear, "kan_<basis>" asks the basis
// registry (nn/basis_registry.h) for that basis' KAN layer.
#include "nn/projection.h"

#include "nn/basis_registry.h"
#include "nn/linear.h"

namespace knot::nn {

std::shared_ptr<Projection> make_projection(const std::string& kind, int64_t in, int64_t out, bool bias,
                                            const nlohmann::json& options) {
  if (kind == "mlp" || kind == "linear") {
    KNOT_CHECK(options.is_null() || options.empty(), "projection 'mlp': takes no options, got {}", options.dump());
    return std::make_shared<Linear>(in, out, bias);
  }
  if (kind.rfind("kan_", 0) == 0 && has_basis(kind.substr(4))) {
    // KAN projections carry no bias, as in the reference projects; the caller's flag is for Linear.
    return make_kan_layer(kind.substr(4), in, out, options.is_null() ? nlohmann::json::object() : options);
  }
  const auto kinds = projection_kinds();
  KNOT_FAIL("projection: unknown kind '{}' (known: {})", kind, fmt::join(kinds, ", "));
}

std::vector<std::string> projection_kinds() {
  std::vector<std::string> kinds{"mlp"};
  for (const auto& b : basis_names()) kinds.push_back("kan_" + b);
  return kinds;
}

}  // namespace knot::nn
