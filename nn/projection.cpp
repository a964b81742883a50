// The projection factory (see projection.h). KAN kinds are resolved through the basis registry
// (nn/basis_registry.h) once it exists; until then only "mlp" is known.
#include "nn/projection.h"

#include "nn/linear.h"

namespace knot::nn {

std::shared_ptr<Projection> make_projection(const std::string& kind, int64_t in, int64_t out, bool bias,
                                            const nlohmann::json& options) {
  if (kind == "mlp" || kind == "linear") {
    KNOT_CHECK(options.is_null() || options.empty(), "projection 'mlp': takes no options, got {}", options.dump());
    return std::make_shared<Linear>(in, out, bias);
  }
  KNOT_FAIL("projection: unknown kind '{}' (known: mlp)", kind);
}

std::vector<std::string> projection_kinds() { return {"mlp"}; }

}  // namespace knot::nn
