// Basis "bspline": efficient-kan's KANLinear (nn/kan_linear.h), math in kernels/bases/bspline.h.
// Options: grid_size, spline_order, scale_noise, scale_base, scale_spline,
// enable_standalone_scale_spline, base_activation, grid_eps, grid_range, bias, path, dtype, seed.
#include "nn/kan_linear.h"

KNOT_REGISTER_BASIS(bspline) {
  using namespace knot;
  using namespace knot::nn;
  register_basis({"bspline", "B-splines of order k on G intervals + silu base (efficient-kan KANLinear)",
                  [](int64_t in, int64_t out, const nlohmann::json& j) -> std::shared_ptr<KANLayer> {
                    Options o(j, "kan_bspline");
                    const KANLinearOptions opt = KANLinearOptions::from_options(o);
                    Generator* gen = o.generator();
                    o.finish();
                    return std::make_shared<KANLinear>(in, out, opt, gen);
                  },
                  {{"grid_size", 3}, {"spline_order", 2}}});
}
