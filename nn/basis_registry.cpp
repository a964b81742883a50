// The basis registry and the KAN layer helpers (see basis_registry.h).
#include "nn/basis_registry.h"

#include "nn/export_graph.h"

#include <cmath>
#include <map>
#include <mutex>

#include "ops/ops.h"

// Registration functions of the built-in bases (defined in nn/bases/<name>.cpp).
#define KNOT_BASIS(name) void knot_register_basis_##name();
#include "nn/bases/builtin.def"
#undef KNOT_BASIS

namespace knot::nn {
namespace {

struct Registry {
  std::vector<BasisSpec> specs;
  bool builtins_done = false;
};

Registry& raw_registry() {
  static Registry r;
  return r;
}

std::recursive_mutex& registry_mutex() {
  static std::recursive_mutex m;
  return m;
}

// The registry with the built-ins loaded (once, on first use, so that static initialisation order
// does not matter).
Registry& registry() {
  std::lock_guard<std::recursive_mutex> lock(registry_mutex());
  Registry& r = raw_registry();
  if (!r.builtins_done) {
    r.builtins_done = true;
#define KNOT_BASIS(name) knot_register_basis_##name();
#include "nn/bases/builtin.def"
#undef KNOT_BASIS
  }
  return r;
}

std::string strip_prefix(const std::string& name) { return name.rfind("kan_", 0) == 0 ? name.substr(4) : name; }

std::string names_list() {
  std::string s;
  for (const auto& b : registry().specs) s += (s.empty() ? "" : ", ") + b.name;
  return s;
}

}  // namespace

void register_basis(BasisSpec spec) {
  std::lock_guard<std::recursive_mutex> lock(registry_mutex());
  Registry& r = raw_registry();
  KNOT_CHECK(!spec.name.empty() && spec.make, "register_basis: a basis needs a name and a factory");
  for (const auto& b : r.specs)
    KNOT_CHECK(b.name != spec.name, "register_basis: basis '{}' is registered twice", spec.name);
  r.specs.push_back(std::move(spec));
}

std::vector<std::string> basis_names() {
  std::vector<std::string> out;
  for (const auto& b : registry().specs) out.push_back(b.name);
  return out;
}

bool has_basis(const std::string& name) {
  const std::string n = strip_prefix(name);
  for (const auto& b : registry().specs)
    if (b.name == n) return true;
  return false;
}

const BasisSpec& basis_spec(const std::string& name) {
  const std::string n = strip_prefix(name);
  for (const auto& b : registry().specs)
    if (b.name == n) return b;
  KNOT_FAIL("kan: unknown basis '{}' (registered: {})", name, names_list());
}

std::shared_ptr<KANLayer> make_kan_layer(const std::string& basis, int64_t in, int64_t out,
                                         const nlohmann::json& options) {
  const BasisSpec& spec = basis_spec(basis);
  KNOT_CHECK(in > 0 && out > 0, "kan_{}: sizes must be positive, got in={} out={}", spec.name, in, out);
  KNOT_CHECK(options.is_null() || options.is_object(), "kan_{}: options must be a JSON object, got {}", spec.name,
             options.dump());
  nlohmann::json opts = options.is_null() ? nlohmann::json::object() : options;
  const std::string init = take_init_option(opts, "kan_" + spec.name);
  std::shared_ptr<KANLayer> layer = spec.make(in, out, opts);
  if (init == "variance_preserving") init_variance_preserving(*layer);
  return layer;
}

std::string take_init_option(nlohmann::json& options, const std::string& owner) {
  {  // declares the key (knot config --schema bases); the check follows
    config::Reader r(options.is_object() && options.contains("init") ? nlohmann::json{{"init", options["init"]}}
                                                                     : nlohmann::json::object(),
                     owner);
    r.get<std::string>("init", "default",
                          "\"default\" (the basis' reference initialisation) or \"variance_preserving\" (output "
                          "variance = input variance on N(0, 1) inputs)");
  }
  if (!options.is_object() || !options.contains("init")) return "default";
  const nlohmann::json v = options["init"];
  options.erase("init");
  KNOT_CHECK(v.is_string() && (v.get<std::string>() == "default" || v.get<std::string>() == "variance_preserving"),
             "{}: option 'init' is {}; choose \"default\" (the basis' reference initialisation) or "
             "\"variance_preserving\" (output variance = input variance on N(0, 1) inputs)",
             owner, v.dump());
  return v.get<std::string>();
}

void init_variance_preserving(KANLayer& layer) {
  NoGradGuard ng;
  const std::vector<Tensor> ws = layer.edge_scale_parameters();
  KNOT_CHECK(!ws.empty(), "kan_{}: init variance_preserving: the layer has no edge coefficients", layer.basis());
  constexpr int64_t kRows = 1024;
  Generator probe(0x5641525052ULL);  // fixed: the same probe for every layer, whatever its seed
  const Tensor x = randn({kRows, layer.in_features()}, ws[0].dtype(), &probe).to(ws[0].device());
  const int64_t out = layer.out_features();
  const std::vector<double> y = layer.forward(x).to(DType::f64).to(Device::cpu()).contiguous().to_vector<double>();
  double total = 0;
  for (int64_t o = 0; o < out; ++o) {
    double mean = 0, sq = 0;
    for (int64_t n = 0; n < kRows; ++n) mean += y[n * out + o];
    mean /= kRows;
    for (int64_t n = 0; n < kRows; ++n) sq += (y[n * out + o] - mean) * (y[n * out + o] - mean);
    total += sq / (kRows - 1);
  }
  const double var = total / static_cast<double>(out);
  KNOT_CHECK(std::isfinite(var) && var > 1e-30,
             "kan_{}: init variance_preserving: the freshly initialised layer's output variance on N(0, 1) inputs "
             "is {} (its edge functions are zero or not finite); nothing to scale",
             layer.basis(), var);
  const double s = 1.0 / std::sqrt(var);
  for (const Tensor& w : ws) w.mul_(s);
}

// ---- KANLayer ---------------------------------------------------------------------------------

Tensor KANLayer::regularization_loss(double, double) const {
  KNOT_FAIL("kan_{}: this basis defines no sparsity regularization (only kan_bspline has one: "
            "efficient-kan's L1 + entropy of the mean |spline_weight|); set its weight to 0",
            basis());
}

std::pair<int64_t, int64_t> KANLayer::count_outside_grid(const Tensor& x_in) const {
  int k = 0;
  const Tensor grid = knot_grid(&k);
  if (!grid.defined()) return {0, 0};
  NoGradGuard ng;
  const Tensor x = flatten_input(x_in, "count_outside_grid").detach().to(Device::cpu()).to(DType::f64).contiguous();
  const Tensor g = grid.detach().to(Device::cpu()).to(DType::f64).contiguous();
  const int64_t N = x.size(0), in = x.size(1), nk = g.size(1);
  KNOT_CHECK(g.size(0) == in && nk >= 2 * k + 2, "kan_{}: count_outside_grid: grid {} does not fit input {}", basis(),
             shape_str(g.shape()), shape_str(x.shape()));
  const double* px = x.data<double>();
  const double* pg = g.data<double>();
  int64_t outside = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < in; ++i) {
      const double v = px[n * in + i], lo = pg[i * nk + k], hi = pg[i * nk + nk - 1 - k];
      outside += (v < lo || v > hi) ? 1 : 0;  // NaN counts as inside: the loss check reports it
    }
  return {outside, N * in};
}

std::vector<Tensor> KANLayer::edge_scale_parameters() const {
  KNOT_FAIL("kan_{}: this basis does not name its edge coefficients (edge_scale_parameters), so init "
            "\"variance_preserving\" cannot scale them",
            basis());
}

Tensor KANLayer::edge_values(const Tensor&) const {
  KNOT_FAIL("kan_{}: this basis does not provide its per-edge functions yet (knot inspect needs them; "
            "kan_bspline does)",
            basis());
}

namespace {

// Φ(x) of a kan_basis layer on the CPU in f64, no graph: x (N, in) -> (N, in, nf) values.
std::vector<double> basis_values_f64(const Tensor& x_in, const kernels::BasisEval& eval) {
  NoGradGuard ng;
  const Tensor x = x_in.detach().to(Device::cpu()).to(DType::f64).contiguous();
  std::vector<double> phi(static_cast<size_t>(x.size(0) * x.size(1) * eval.nf));
  eval.f64(x.data<double>(), x.size(0), x.size(1), phi.data(), nullptr);
  return phi;
}

}  // namespace

Tensor basis_edge_values(const Tensor& x_in, const Tensor& W_in, const kernels::BasisEval& eval) {
  NoGradGuard ng;
  const Tensor Wt = W_in.detach().to(Device::cpu()).to(DType::f64).contiguous();
  KNOT_CHECK(x_in.dim() == 2 && Wt.dim() == 3 && Wt.size(1) == x_in.size(1) && Wt.size(2) == eval.nf,
             "basis_edge_values: x {} and W {} should be (N, in) and (out, in, {})", shape_str(x_in.shape()),
             shape_str(Wt.shape()), eval.nf);
  const int64_t N = x_in.size(0), in = x_in.size(1), out = Wt.size(0), nf = eval.nf;
  const std::vector<double> phi = basis_values_f64(x_in, eval);  // (N, in, nf)
  const double* w = Wt.data<double>();
  Tensor e = empty({N, out, in}, DType::f64);
  double* pe = e.data<double>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i) {
        double v = 0;
        for (int64_t f = 0; f < nf; ++f) v += phi[(n * in + i) * nf + f] * w[(o * in + i) * nf + f];
        pe[(n * out + o) * in + i] = v;
      }
  return e;
}

Tensor KANLayer::edge_activations(const Tensor&) const {
  KNOT_FAIL("kan_{}: this basis does not provide its per-edge functions as a graph yet (the activation "
            "penalty, reg_metric \"activations\", needs them; bspline, chebyshev, legendre, fourier and rational do)",
            basis());
}

Tensor KANLayer::activation_regularization(const Tensor& x, double a, double e) const {
  const Tensor l1 = mean(abs(edge_activations(x)), {0});  // (out, in)
  const Tensor total = sum(l1);
  const Tensor p = div(l1, add(total, 1e-30));
  const Tensor entropy = neg(sum(mul(p, log(add(p, 1e-30)))));  // p = 0 contributes 0, not NaN
  return add(mul(total, a), mul(entropy, e));
}

Tensor basis_edge_activations(const Tensor& x_in, const Tensor& W, const kernels::BasisEval& eval) {
  KNOT_CHECK(x_in.dim() == 2 && W.dim() == 3 && W.size(1) == x_in.size(1) && W.size(2) == eval.nf,
             "basis_edge_activations: x {} and W {} should be (N, in) and (out, in, {})", shape_str(x_in.shape()),
             shape_str(W.shape()), eval.nf);
  const int64_t N = x_in.size(0), in = x_in.size(1), nf = eval.nf;
  const Tensor phi = from_vector(basis_values_f64(x_in, eval), {N, in, nf}).to(W.dtype()).to(W.device());
  return mix_edges(phi, W);
}

Tensor mix_edges(const Tensor& phi, const Tensor& W) {
  KNOT_CHECK(phi.dim() == 3 && W.dim() == 3 && phi.size(1) == W.size(1) && phi.size(2) == W.size(2),
             "mix_edges: phi {} and W {} should be (N, in, nf) and (out, in, nf)", shape_str(phi.shape()),
             shape_str(W.shape()));
  // (in, N, nf)·(in, out, nf)ᵀ per input i -> (in, N, out), viewed as (N, out, in).
  return permute(matmul(permute(phi, {1, 0, 2}), permute(W, {1, 0, 2}), false, true), {1, 2, 0});
}

std::string KANLayer::to_graph(ExportGraph&, const std::string&, const std::string& prefix) const {
  KNOT_FAIL("export: KAN basis '{}' (layer '{}') has no export to standard operators; a basis adds one by "
            "overriding KANLayer::to_graph (docs/adding-a-basis.md)",
            basis(), prefix.empty() ? std::string("<root>") : prefix.substr(0, prefix.size() - 1));
}

std::string basis_graph_matmul(ExportGraph& g, const std::string& phi, const Tensor& W, const std::string& name) {
  KNOT_CHECK(W.dim() == 3, "export: basis mixing weight '{}' must be (out, in, nf), got {}", name, shape_str(W.shape()));
  const int64_t out = W.size(0), in = W.size(1), nf = W.size(2);
  NoGradGuard ng;
  const Tensor Wm = permute(W.detach(), {1, 2, 0}).contiguous().reshape({in * nf, out});  // [(i, f), o]
  return g.matmul(g.reshape(phi, {-1, in * nf}), g.constant(name + ".as_matrix", Wm));
}

void KANLayer::refine_grid(const Tensor&, int64_t, double) {
  KNOT_FAIL("kan_{}: this basis has no grid to refine (grid extension needs kan_bspline)", basis());
}

void check_kan_regularization(const Module& model, const std::string& setting, bool activations) {
  bool any = false;
  for (const auto& [name, m] : model.named_modules()) {
    const auto* k = dynamic_cast<const KANLayer*>(m);
    if (!k) continue;
    any = true;
    if (activations) {
      const auto own = k->parameters();
      try {
        NoGradGuard ng;
        k->edge_activations(zeros({1, k->in_features()}, own.empty() ? DType::f32 : own.front().dtype())
                                .to(own.empty() ? Device::cpu() : own.front().device()));
      } catch (const Error& e) {
        KNOT_FAIL("{} > 0 with the activations penalty, but KAN layer '{}' (kan_{}) cannot give its per-edge "
                  "functions: {}",
                  setting, name.empty() ? std::string("(the model)") : name, k->basis(), e.what());
      }
      continue;
    }
    KNOT_CHECK(k->has_regularization(),
               "{} > 0 adds a sparsity penalty, but KAN layer '{}' (kan_{}) defines none: only kan_bspline "
               "layers have the weights penalty; set {} to 0, use kan_bspline, or choose pykan's penalty on "
               "activations (train.kan_reg_metric=activations in knot train, train.reg_metric=activations in knot fit)",
               setting, name.empty() ? std::string("(the model)") : name, k->basis(), setting);
  }
  KNOT_CHECK(any, "{} > 0 adds a sparsity penalty on KAN layers, but the model has no KAN layer; set it to 0",
             setting);
}

Tensor KANLayer::flatten_input(const Tensor& x, const char* op) const {
  KNOT_CHECK(x.dim() >= 1 && x.size(-1) == in_, "{}: input {} does not match in_features = {}", op,
             shape_str(x.shape()), in_);
  return x.reshape({-1, in_});
}

void check_knot_grid(const Tensor& grid, const std::string& name, bool strict, std::vector<std::string>& problems) {
  if (!grid.defined() || grid.numel() == 0) return;
  const int64_t nk = grid.dim() == 0 ? 1 : grid.size(-1), rows = grid.numel() / nk;
  const std::vector<double> v = grid.detach().to(Device::cpu()).to_vector<double>();
  const size_t before = problems.size();
  for (int64_t r = 0; r < rows && problems.size() - before < 3; ++r) {
    const double* t = v.data() + r * nk;
    std::string bad;
    for (int64_t j = 0; j < nk && bad.empty(); ++j) {
      if (!std::isfinite(t[j]))
        bad = fmt::format("row {} has {} at index {}; a knot grid must be finite", r, t[j], j);
      else if (j > 0 && (t[j] < t[j - 1] || (strict && t[j] == t[j - 1])))
        bad = fmt::format("row {} {} at index {} ({} after {}); a knot grid must be {}", r,
                          t[j] < t[j - 1] ? "decreases" : "repeats a knot", j, t[j], t[j - 1],
                          strict ? "strictly increasing" : "non-decreasing");
    }
    if (bad.empty() && nk > 1 && !(t[nk - 1] > t[0]))
      bad = fmt::format("row {} is constant ({} … {}); a knot grid must span an interval", r, t[0], t[nk - 1]);
    if (!bad.empty()) problems.push_back(fmt::format("'{}' {}: {}", name, shape_str(grid.shape()), bad));
  }
}

// ---- Options ----------------------------------------------------------------------------------

Options::Options(const nlohmann::json& j, std::string owner)
    : config::Reader(j.is_null() ? nlohmann::json::object() : j, std::move(owner)) {}

DType Options::dtype() {
  const std::string s = get<std::string>("dtype", "f32", "parameter dtype: \"f32\" or \"f64\"");
  const DType t = dtype_from_string(s);
  KNOT_CHECK(t == DType::f32 || t == DType::f64, "config '{}': key 'dtype' must be f32 or f64, got '{}'", owner(), s);
  return t;
}

Generator* Options::generator() {
  const bool seeded = has("seed");
  const uint64_t seed = get<uint64_t>("seed", 0, "initialisation RNG seed (absent: the default generator)");
  if (!seeded) return &default_generator();
  gen_ = std::make_shared<Generator>(seed);
  return gen_.get();
}

}  // namespace knot::nn
