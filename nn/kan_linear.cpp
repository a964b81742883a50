// KANLinear (see kan_linear.h): init, forward, curve2coeff and update_grid (least squares through the
// host kernels kernels::lstsq and kernels::bspline_regrid_map) and the regularisation loss of
// efficient-kan.
#include "nn/kan_linear.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/dispatch.h"
#include "core/runtime.h"
#include "kernels/bases/bspline.h"
#include "kernels/linalg.h"
#include "kernels/spline.h"
#include "nn/export_graph.h"
#include "nn/init.h"
#include "ops/kan.h"
#include "ops/ops.h"

namespace knot::nn {
namespace {

bool is_silu(const std::string& a) { return a == "silu" || a == "swish"; }

// Rows of a (N, in) f64 copy of x, on the CPU.
std::vector<double> host_f64(const Tensor& t) { return t.detach().to(Device::cpu()).to_vector<double>(); }

}  // namespace

KANLinearOptions KANLinearOptions::from_options(Options& o) {
  KANLinearOptions r;
  r.grid_size = o.get<int64_t>("grid_size", r.grid_size, "grid intervals");
  r.spline_order = o.get<int>("spline_order", r.spline_order, "B-spline order k (cubic: 3)");
  r.scale_noise = o.get<double>("scale_noise", r.scale_noise, "std of the noise the spline weights start from (efficient-kan)");
  r.scale_base = o.get<double>("scale_base", r.scale_base, "scale of the base (residual) weights' initialisation");
  r.scale_spline = o.get<double>("scale_spline", r.scale_spline, "scale of the spline weights' initialisation");
  r.enable_standalone_scale_spline = o.get<bool>("enable_standalone_scale_spline", r.enable_standalone_scale_spline, "a learned per-edge scale on the spline (efficient-kan)");
  r.base_activation = o.get<std::string>("base_activation", r.base_activation, "the residual branch's activation: silu, gelu, relu, tanh, identity, ...");
  r.grid_eps = o.get<double>("grid_eps", r.grid_eps, "grid update: 0 = quantile grid, 1 = uniform grid, in between a blend (efficient-kan)");
  const auto gr = o.get<std::vector<double>>("grid_range", {r.grid_range[0], r.grid_range[1]}, "the initial grid's [low, high]");
  KNOT_CHECK(gr.size() == 2 && gr[0] < gr[1], "{}: option 'grid_range' must be [lo, hi] with lo < hi", o.owner());
  r.grid_range = {gr[0], gr[1]};
  r.bias = o.get<bool>("bias", r.bias, "a bias per output");
  const std::string path = o.get<std::string>("path", "auto", "kernel path: \"auto\", \"dense\" (bases x weights as one GEMM) or \"local\" (only the k + 1 nonzero bases)");
  if (path == "auto") r.path = kernels::SplinePath::automatic;
  else if (path == "dense") r.path = kernels::SplinePath::dense;
  else if (path == "local") r.path = kernels::SplinePath::local;
  else KNOT_FAIL("{}: option 'path' must be auto, dense or local, got '{}'", o.owner(), path);
  r.dtype = o.dtype();
  return r;
}

KANLinear::KANLinear(int64_t in, int64_t out, const KANLinearOptions& opt, Generator* gen)
    : KANLayer(in, out), opt_(opt) {
  const int64_t G = opt.grid_size;
  const int k = opt.spline_order;
  KNOT_CHECK(in > 0 && out > 0, "KANLinear: sizes must be positive, got in={} out={}", in, out);
  KNOT_CHECK(G >= 1, "KANLinear: grid_size must be >= 1, got {}", G);
  KNOT_CHECK(k >= 0 && k <= 8, "KANLinear: spline_order must be in 0 … 8, got {}", k);
  KNOT_CHECK(is_activation(opt.base_activation), "KANLinear: unknown base_activation '{}'", opt.base_activation);
  if (!gen) gen = &default_generator();
  const DType dt = opt.dtype;
  const double lo = opt.grid_range[0], h = (opt.grid_range[1] - opt.grid_range[0]) / static_cast<double>(G);
  const int64_t nk = G + 2 * k + 1, nb = G + k;

  std::vector<double> knots(static_cast<size_t>(in * nk));
  for (int64_t i = 0; i < in; ++i)
    for (int64_t j = 0; j < nk; ++j) knots[i * nk + j] = lo + static_cast<double>(j - k) * h;
  grid = register_buffer("grid", from_vector(knots, {in, nk}).to(dt));
  base_weight = register_parameter("base_weight", empty({out, in}, dt));
  spline_weight = register_parameter("spline_weight", empty({out, in, nb}, dt));
  if (opt.enable_standalone_scale_spline) spline_scaler = register_parameter("spline_scaler", empty({out, in}, dt));
  if (opt.bias) bias = register_parameter("bias", zeros({out}, dt));

  NoGradGuard ng;
  init::kaiming_uniform_(base_weight, std::sqrt(5.0) * opt.scale_base, gen);
  // Noise at the G+1 interior knots t_k … t_{G+k}, fitted by least squares.
  const Tensor noise = mul(add(rand({G + 1, in, out}, DType::f64, gen), -0.5), opt.scale_noise / static_cast<double>(G));
  const Tensor interior = grid.detach().to(DType::f64).slice(1, k, k + G + 1).t().contiguous();  // (G+1, in)
  Tensor coeff = curve2coeff(interior, noise);
  if (!opt.enable_standalone_scale_spline) coeff = mul(coeff, opt.scale_spline);
  assign(spline_weight, coeff.to(dt));
  if (spline_scaler.defined()) init::kaiming_uniform_(spline_scaler, std::sqrt(5.0) * opt.scale_spline, gen);
}

void KANLinear::check_state(const IncomingTensor& incoming, const std::string& prefix,
                            std::vector<std::string>& problems) const {
  check_knot_grid(incoming("grid"), prefix + "grid", /*strict=*/false, problems);
}

std::map<std::string, Shape> KANLinear::adopt_state_shapes(const IncomingTensor& incoming, bool apply) {
  const Tensor g = incoming("grid"), w = incoming("spline_weight");
  const int64_t k = opt_.spline_order;
  if (!g.defined() || !w.defined() || g.dim() != 2 || w.dim() != 3) return {};
  const int64_t G = w.size(2) - k;  // the stored grid size
  if (G < 1 || G == opt_.grid_size || g.size(0) != in_ || g.size(1) != G + 2 * k + 1 || w.size(0) != out_ ||
      w.size(1) != in_)
    return {};  // the same size, or shapes that do not describe one layer: load_state_dict names the mismatch
  if (apply) {
    NoGradGuard ng;
    assign(grid, zeros({in_, G + 2 * k + 1}, grid.dtype()).to(grid.device()));
    assign(spline_weight, zeros({out_, in_, G + k}, spline_weight.dtype()).to(spline_weight.device()));
    opt_.grid_size = G;
  }
  return {{"grid", Shape{in_, G + 2 * k + 1}}, {"spline_weight", Shape{out_, in_, G + k}}};
}

Tensor KANLinear::forward(const Tensor& x) const {
  KNOT_CHECK(x.dim() >= 1 && x.size(-1) == in_, "KANLinear: input {} does not match in_features = {}",
             shape_str(x.shape()), in_);
  capture_input(x);  // for grid updates inside a model (basis_registry.h)
  const bool fused_base = is_silu(opt_.base_activation);
  Tensor y = kan_bspline(x, grid, fused_base ? base_weight : Tensor(), spline_weight, spline_scaler,
                         opt_.spline_order, opt_.path);
  if (!fused_base) y = add(y, linear(activation(opt_.base_activation, x), base_weight));
  if (bias.defined()) y = add(y, bias);
  return y;
}

// Export. The B-splines of every feature by the Cox–de Boor recursion over the whole knot vector,
// in standard operators (the kernel's span search has no ONNX form, but the full recursion gives
// the same values: every function that is zero on x's span stays zero):
//   level 0:  B⁰_j = [t_j ≤ x < t_{j+1}]                          (GreaterOrEqual, Less, And, Cast)
//   level p:  Bᵖ_j = (x − t_j)·L_j·Bᵖ⁻¹_j + (t_{j+p+1} − x)·R_j·Bᵖ⁻¹_{j+1},   j = 0 … nk−p−2
// with L_j = 1/(t_{j+p} − t_j) and R_j = 1/(t_{j+p+1} − t_{j+1}) precomputed from the grid, 0 where
// the knots repeat (the kernel's convention). Then one MatMul with the scaled spline weight, the
// base branch act(x)·base_weightᵀ and the bias.
std::string KANLinear::to_graph(ExportGraph& g, const std::string& x, const std::string& prefix) const {
  NoGradGuard ng;
  const int k = opt_.spline_order;
  const int64_t nk = grid.size(1);
  std::string shape;
  const std::string x2 = g.flatten_rows(x, in_, &shape);
  const std::string x3 = g.unsqueeze(x2, {2});  // (N, in, 1)
  const Tensor t = grid.detach().to(DType::f64).contiguous();
  auto knots = [&](int64_t from, int64_t n) { return t.slice(1, from, from + n).contiguous(); };
  const std::string ge = g.op("GreaterOrEqual", {x3, g.constant(prefix + "grid.lo", knots(0, nk - 1))});
  const std::string lt = g.op("Less", {x3, g.constant(prefix + "grid.hi", knots(1, nk - 1))});
  std::string B = g.op("Cast", {g.op("And", {ge, lt})}, {{"to", int64_t{g.dtype() == DType::f64 ? 11 : 1}}});
  for (int p = 1; p <= k; ++p) {
    const int64_t n = nk - 1 - p;  // functions at level p
    const Tensor tj = knots(0, n), tjp = knots(p, n), tj1 = knots(1, n), tjp1 = knots(p + 1, n);
    auto recip = [](const Tensor& d) {  // 1/d, 0 where d == 0
      std::vector<double> v = d.to_vector<double>();
      for (double& e : v) e = e != 0.0 ? 1.0 / e : 0.0;
      return from_vector(v, d.shape());
    };
    const Tensor L = recip(sub(tjp, tj)), R = recip(sub(tjp1, tj1));
    const std::string lo = g.op("Slice", {B, g.ints({0}), g.ints({n}), g.ints({2})});
    const std::string hi = g.op("Slice", {B, g.ints({1}), g.ints({n + 1}), g.ints({2})});
    const std::string left =
        g.mul(g.mul(g.sub(x3, g.constant(fmt::format("{}grid.level{}.t", prefix, p), tj)),
                    g.constant(fmt::format("{}grid.level{}.inv_left", prefix, p), L)),
              lo);
    const std::string right =
        g.mul(g.mul(g.sub(g.constant(fmt::format("{}grid.level{}.t_end", prefix, p), tjp1), x3),
                    g.constant(fmt::format("{}grid.level{}.inv_right", prefix, p), R)),
              hi);
    B = g.add(left, right);  // (N, in, nk − 1 − p)
  }
  std::string y = basis_graph_matmul(g, B, scaled_spline_weight().detach(), prefix + "spline_weight.scaled");
  y = g.add(y, g.linear(g.activation(opt_.base_activation, x2), prefix + "base_weight", base_weight));
  if (bias.defined()) y = g.add(y, g.weight(prefix + "bias", bias));
  return g.unflatten_rows(y, shape, out_);
}

Tensor KANLinear::b_splines(const Tensor& x) const {
  KNOT_CHECK(x.dim() == 2 && x.size(1) == in_, "KANLinear.b_splines: input {} should be (N, {})",
             shape_str(x.shape()), in_);
  return bspline_basis(x.to(grid.dtype()), grid, opt_.spline_order);
}

Tensor KANLinear::curve2coeff(const Tensor& x, const Tensor& y) const {
  KNOT_CHECK(x.dim() == 2 && x.size(1) == in_, "KANLinear.curve2coeff: x {} should be (N, {})", shape_str(x.shape()),
             in_);
  KNOT_CHECK(y.dim() == 3 && y.size(0) == x.size(0) && y.size(1) == in_ && y.size(2) == out_,
             "KANLinear.curve2coeff: y {} should be (N, in, out) = ({}, {}, {})", shape_str(y.shape()), x.size(0), in_,
             out_);
  const Tensor g64 = grid.detach().to(Device::cpu()).to(DType::f64);
  const Tensor A = bspline_basis(x.detach().to(Device::cpu()).to(DType::f64), g64, opt_.spline_order);  // (N, in, nb)
  const Tensor Y = y.detach().to(Device::cpu()).to(DType::f64);                                         // (N, in, out)
  // One least-squares problem per input feature: (in, N, nb)·C_i ≈ (in, N, out).
  const Tensor C = kernels::lstsq(permute(A, {1, 0, 2}).contiguous(), permute(Y, {1, 0, 2}).contiguous());  // (in, nb, out)
  return permute(C, {2, 0, 1}).contiguous().to(grid.dtype()).to(grid.device());  // (out, in, nb)
}

Tensor KANLinear::scaled_spline_weight() const {
  return spline_scaler.defined() ? mul(spline_weight, unsqueeze(spline_scaler, -1)) : spline_weight;
}

// update_grid and refine_grid (regrid with the same or a new grid size G'), in three parts:
//   1. New knots per feature, G'+1 of them inside: a blend of the batch quantiles and a uniform grid
//      over [min − margin, max + margin] (efficient-kan's rule).
//   2. The refit. efficient-kan evaluates the layer's spline part on the batch, u = B_old(x)·Cᵀ, an
//      (N, in, out) tensor, and solves the least-squares problem B_new(x)·C_newᵀ ≈ u per feature.
//      That tensor and the (N, in, nb) bases cost 8·N·in·(out + 2·nb) bytes (about 5 GB for a
//      128 → 5000 head on 1,000 rows), so instead kernels::bspline_regrid_map (kernels/spline.h)
//      gives per feature the map T_i (nb' × nb) with c_new = T_i·c_old, from a streamed QR of
//      [B_new | B_old] without forming u: the same solution as the direct solve, to rounding.
//   3. C_new[o, i, :] = T_i·C_old[o, i, :] for every output o.
// Memory: O(in·nb·nb' + threads·256·(nb + nb')) besides the weights; time
// O(N·in·(nb + nb')² + out·in·nb·nb').
// Features are independent (one pool task each), so the result does not depend on the thread count.
void KANLinear::update_grid(const Tensor& x, double margin) { regrid(x, margin, opt_.grid_size, "KANLinear.update_grid"); }

void KANLinear::refine_grid(const Tensor& x, int64_t grid_size, double margin) {
  KNOT_CHECK(grid_size >= 1, "KANLinear.refine_grid: grid_size must be >= 1, got {}", grid_size);
  regrid(x, margin, grid_size, "KANLinear.refine_grid");
}

void KANLinear::regrid(const Tensor& x_in, double margin, int64_t G, const char* op) {
  NoGradGuard ng;
  const Tensor x = flatten_input(x_in, op).detach().to(Device::cpu()).to(DType::f64).contiguous();
  const int64_t N = x.size(0), k = opt_.spline_order, nb = G + k, nk = G + 2 * k + 1;
  const int64_t nb_old = opt_.grid_size + k;
  KNOT_CHECK(N >= 1, "{}: empty batch", op);
  const std::vector<double> xv = x.to_vector<double>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < in_; ++i)
      KNOT_CHECK(std::isfinite(xv[n * in_ + i]),
                 "{}: the input holds a non-finite value ({}) at row {}, feature {}; a grid cannot be fitted to "
                 "NaN or Inf (the layer is left as it was)",
                 op, xv[n * in_ + i], n, i);

  // 1. New knots.
  std::vector<double> knots(static_cast<size_t>(in_ * nk));
  std::vector<double> col(static_cast<size_t>(N));
  for (int64_t i = 0; i < in_; ++i) {
    for (int64_t n = 0; n < N; ++n) col[n] = xv[n * in_ + i];
    std::sort(col.begin(), col.end());
    const double step = (col[N - 1] - col[0] + 2 * margin) / static_cast<double>(G);
    double* t = knots.data() + i * nk;
    for (int64_t g = 0; g <= G; ++g) {
      // torch.linspace(0, N−1, G+1, dtype=int64) truncates toward zero.
      const auto idx = static_cast<int64_t>(static_cast<double>(g) * static_cast<double>(N - 1) / static_cast<double>(G));
      const double adaptive = col[idx];
      const double uniform = col[0] - margin + static_cast<double>(g) * step;
      t[k + g] = opt_.grid_eps * uniform + (1.0 - opt_.grid_eps) * adaptive;
    }
    for (int64_t r = 1; r <= k; ++r) {
      t[k - r] = t[k] - static_cast<double>(r) * step;
      t[k + G + r] = t[k + G] + static_cast<double>(r) * step;
    }
  }

  // 2. T_i per feature (nb × nb_old): the least-squares map from old to new coefficients.
  const Tensor T_map = kernels::bspline_regrid_map(x, from_vector(knots, {in_, nk}),
                                                   grid.detach().to(Device::cpu()).to(DType::f64).contiguous(),
                                                   static_cast<int>(k));
  const double* T = T_map.data<double>();

  // 3. The refit of the scaled weight, divided back by the scaler: efficient-kan stores the refit
  // of the *scaled* weight in spline_weight, which changes the outputs whenever spline_scaler ≠ 1;
  // dividing keeps them, as update_grid intends (a scaler below 1e-12 is not divided by).
  // Read and written in the weight's own dtype (sums in f64): no f64 copy of the weight.
  const Tensor w_old = spline_weight.detach().to(Device::cpu()).contiguous();
  const Tensor s_old = spline_scaler.defined() ? spline_scaler.detach().to(Device::cpu()).contiguous() : Tensor();
  Tensor w_new = empty({out_, in_, nb}, w_old.dtype());
  dispatch_float(w_old.dtype(), op, [&](auto tag) {
    using W = decltype(tag);
    const W* wo = w_old.data<W>();
    const W* so = s_old.defined() ? s_old.data<W>() : nullptr;
    W* wn = w_new.data<W>();
    host_parallel_for(out_, 1, [&](int64_t o0, int64_t o1) {
      std::vector<double> c(static_cast<size_t>(nb_old));
      for (int64_t o = o0; o < o1; ++o)
        for (int64_t i = 0; i < in_; ++i) {
          const int64_t from = (o * in_ + i) * nb_old, to = (o * in_ + i) * nb;
          const double s = so ? static_cast<double>(so[o * in_ + i]) : 1.0;
          const double div = std::abs(s) < 1e-12 ? 1.0 : s;
          for (int64_t j = 0; j < nb_old; ++j) c[j] = static_cast<double>(wo[from + j]) * s;
          const double* Ti = T + i * nb * nb_old;
          for (int64_t a = 0; a < nb; ++a) {
            double acc = 0;
            for (int64_t b = 0; b < nb_old; ++b) acc += Ti[a * nb_old + b] * c[b];
            wn[to + a] = static_cast<W>(acc / div);
          }
        }
    });
  });
  assign(grid, from_vector(knots, {in_, nk}).to(grid.dtype()).to(grid.device()));
  assign(spline_weight, w_new.to(spline_weight.device()));
  opt_.grid_size = G;
}

Tensor KANLinear::edge_values(const Tensor& x_in) const {
  NoGradGuard ng;
  const Tensor x = flatten_input(x_in, "KANLinear.edge_values").detach().to(Device::cpu()).to(DType::f64).contiguous();
  const int64_t N = x.size(0), nb = opt_.grid_size + opt_.spline_order;
  const std::vector<double> a = activation(opt_.base_activation, x).contiguous().to_vector<double>();  // (N, in)
  const std::vector<double> B =
      bspline_basis(x, grid.detach().to(Device::cpu()).to(DType::f64).contiguous(), opt_.spline_order)
          .to_vector<double>();                                         // (N, in, nb)
  const std::vector<double> C = host_f64(scaled_spline_weight());    // (out, in, nb)
  const std::vector<double> bw = host_f64(base_weight);              // (out, in)
  Tensor e = empty({N, out_, in_}, DType::f64);
  double* pe = e.data<double>();
  host_parallel_for(N, 1, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t o = 0; o < out_; ++o)
        for (int64_t i = 0; i < in_; ++i) {
          const double* b = B.data() + (n * in_ + i) * nb;
          const double* c = C.data() + (o * in_ + i) * nb;
          double v = bw[o * in_ + i] * a[n * in_ + i];
          for (int64_t j = 0; j < nb; ++j) v += b[j] * c[j];
          pe[(n * out_ + o) * in_ + i] = v;
        }
  });
  return e;
}

Tensor KANLinear::edge_activations(const Tensor& x_in) const {
  Tensor x, act, B;
  {
    NoGradGuard ng;
    x = flatten_input(x_in, "KANLinear.edge_activations").detach().to(grid.dtype()).contiguous();
    act = activation(opt_.base_activation, x);         // (N, in)
    B = bspline_basis(x, grid, opt_.spline_order);     // (N, in, nb)
  }
  const Tensor base = mul(unsqueeze(act, 1), unsqueeze(base_weight, 0));                      // (N, out, in)
  const Tensor spline = mix_edges(B, scaled_spline_weight());                                  // (N, out, in)
  return add(base, spline);
}

Tensor KANLinear::regularization_loss(double a, double e) const {
  const Tensor l1 = mean(abs(spline_weight), {-1});  // (out, in)
  const Tensor total = sum(l1);
  const Tensor p = div(l1, total);
  const Tensor entropy = neg(sum(mul(p, log(p))));
  return add(mul(total, a), mul(entropy, e));
}

}  // namespace knot::nn
