// Basis "rbf" (FastKAN): y = spline_linear(φ(LayerNorm(x))) + base_linear(silu(x)),
// φ_j(u) = exp(−((u − g_j)/h)²) on g = linspace(grid_min, grid_max, num_grids), h = (max−min)/(num_grids−1).
// Parameters (FastKAN's names): layernorm.weight/bias (in), rbf.grid (num_grids, not trained),
// spline_linear.weight (out, in·num_grids) ~ trunc-normal(std = spline_weight_init_scale),
// base_linear.weight (out, in), base_linear.bias (out) (PyTorch Linear init).
// Options: grid_min (−2), grid_max (2), num_grids (8), use_base_update (true), use_layernorm (true),
// spline_weight_init_scale (0.1), dtype, seed. Forward/backward of the RBF part: the fused kan_basis op.
#include "kernels/bases/rbf.h"

#include <cmath>

#include "kernels/bases/eval.h"
#include "nn/bases/common.h"
#include "nn/basis_registry.h"
#include "nn/export_graph.h"
#include "nn/init.h"
#include "nn/linear.h"
#include "ops/kan.h"
#include "ops/ops.h"

namespace knot::nn {
namespace {

struct RBFOptions {
  double grid_min = -2.0, grid_max = 2.0, init_scale = 0.1;
  int num_grids = 8;
  bool base_update = true, layernorm = true;
};

class FastKAN : public KANLayer {
 public:
  FastKAN(int64_t in, int64_t out, const RBFOptions& o, DType dt, Generator* gen) : KANLayer(in, out), o_(o) {
    KNOT_CHECK(o.num_grids >= 2 && o.grid_max > o.grid_min,
               "kan_rbf: need num_grids >= 2 and grid_max > grid_min, got {} on [{}, {}]", o.num_grids, o.grid_min,
               o.grid_max);
    const int64_t J = o.num_grids;
    if (o.layernorm) {
      auto ln = register_module("layernorm", std::make_shared<ParamHolder>("LayerNorm"));
      ln_weight = ln->param("weight", ones({in}, dt));
      ln_bias = ln->param("bias", zeros({in}, dt));
    }
    auto rbf = register_module("rbf", std::make_shared<ParamHolder>("RadialBasisFunction"));
    std::vector<double> g(static_cast<size_t>(J));
    for (int64_t j = 0; j < J; ++j) g[j] = o.grid_min + (o.grid_max - o.grid_min) * static_cast<double>(j) / (J - 1);
    grid = rbf->param("grid", from_vector(g, {J}).to(dt), /*trainable=*/false);
    inv_h_ = (J - 1) / (o.grid_max - o.grid_min);
    auto sl = register_module("spline_linear", std::make_shared<ParamHolder>("SplineLinear"));
    spline_weight = sl->param("weight", empty({out, in * J}, dt));
    NoGradGuard ng;
    init::trunc_normal_(spline_weight, 0.0, o.init_scale, -2.0, 2.0, gen);
    if (o.base_update) base_linear = register_module("base_linear", std::make_shared<Linear>(in, out, true, dt, gen));
  }
  std::string type_name() const override { return "FastKANLayer"; }
  // spline_linear.weight and base_linear.weight (its bias is not an edge's).
  std::vector<Tensor> edge_scale_parameters() const override {
    std::vector<Tensor> w{spline_weight};
    if (base_linear) w.push_back(base_linear->weight);
    return w;
  }
  // The RBF centres of a loaded checkpoint must be finite and strictly increasing.
  void check_state(const IncomingTensor& incoming, const std::string& prefix,
                   std::vector<std::string>& problems) const override {
    check_knot_grid(incoming("rbf.grid"), prefix + "rbf.grid", /*strict=*/true, problems);
  }
  std::string basis() const override { return "rbf"; }
  Tensor forward(const Tensor& x) const override {
    capture_input(x);  // for grid updates and knot inspect (basis_registry.h)
    KNOT_CHECK(x.dim() >= 1 && x.size(-1) == in_, "kan_rbf: input {} does not match in_features = {}",
               shape_str(x.shape()), in_);
    const int J = o_.num_grids;
    const std::vector<double> gd = grid.detach().to(Device::cpu()).to_vector<double>();
    const double inv_h = inv_h_;
    const auto eval = basis::make_basis_eval(J, [gd, J, inv_h](auto xv, int64_t, auto* phi, auto* dphi) {
      using T = std::remove_cv_t<decltype(xv)>;
      T gt[64];
      for (int j = 0; j < J && j < 64; ++j) gt[j] = static_cast<T>(gd[j]);
      basis::rbf_eval(xv, gt, J, static_cast<T>(inv_h), phi, dphi);
    });
    const Tensor h = ln_weight.defined() ? layer_norm(x, ln_weight, ln_bias, 1e-5) : x;
    Tensor y = kan_basis(h, reshape(spline_weight, {out_, in_, J}), eval, "kan_rbf");
    if (base_linear) y = add(y, base_linear->forward(silu(x)));
    return y;
  }
  // Export: LayerNormalization, exp(−((u − g_j)·(1/h))²), one MatMul, plus base_linear(silu(x)).
  std::string to_graph(ExportGraph& g, const std::string& x, const std::string& prefix) const override {
    std::string shape;
    const std::string x2 = g.flatten_rows(x, in_, &shape);
    const std::string h = ln_weight.defined()
                              ? g.op("LayerNormalization",
                                     {x2, g.weight(prefix + "layernorm.weight", ln_weight),
                                      g.weight(prefix + "layernorm.bias", ln_bias)},
                                     {{"axis", int64_t{-1}}, {"epsilon", 1e-5}})
                              : x2;
    const std::string z = g.mul(g.sub(g.unsqueeze(h, {2}), g.weight(prefix + "rbf.grid", grid)), g.scalar(inv_h_));
    const std::string phi = g.op("Exp", {g.op("Neg", {g.mul(z, z)})});  // (N, in, J)
    std::string y = basis_graph_matmul(g, phi, reshape(spline_weight, {out_, in_, o_.num_grids}), prefix + "spline_weight");
    if (base_linear) y = g.add(y, base_linear->to_graph(g, g.activation("silu", x2), prefix + "base_linear."));
    return g.unflatten_rows(y, shape, out_);
  }
  Tensor ln_weight, ln_bias, grid, spline_weight;
  std::shared_ptr<Linear> base_linear;

 private:
  RBFOptions o_;
  double inv_h_;
};

}  // namespace
}  // namespace knot::nn

KNOT_REGISTER_BASIS(rbf) {
  using namespace knot;
  using namespace knot::nn;
  register_basis({"rbf", "Gaussian RBFs on a fixed grid after LayerNorm, plus a silu Linear (FastKAN)",
                  [](int64_t in, int64_t out, const nlohmann::json& j) -> std::shared_ptr<KANLayer> {
                    Options o(j, "kan_rbf");
                    RBFOptions r;
                    r.grid_min = o.get<double>("grid_min", r.grid_min, "the first RBF centre");
                    r.grid_max = o.get<double>("grid_max", r.grid_max, "the last RBF centre");
                    r.num_grids = o.get<int>("num_grids", r.num_grids, "RBF centres");
                    KNOT_CHECK(r.num_grids <= 64, "kan_rbf: num_grids must be <= 64, got {}", r.num_grids);
                    r.base_update = o.get<bool>("use_base_update", r.base_update, "a SiLU residual branch (FastKAN)");
                    r.layernorm = o.get<bool>("use_layernorm", r.layernorm, "LayerNorm on the input first (FastKAN)");
                    r.init_scale = o.get<double>("spline_weight_init_scale", r.init_scale, "std of the spline weights' initialisation");
                    const DType dt = o.dtype();
                    Generator* gen = o.generator();
                    o.finish();
                    return std::make_shared<FastKAN>(in, out, r, dt, gen);
                  },
                  {{"num_grids", 4}}});
}
