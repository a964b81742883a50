// B-spline KAN: the basis against a literal float64 Cox–de Boor recursion, partition of unity,
// derivatives, the fused op against its composite reference (both paths), gradchecks, and the
// KANLinear layer (efficient-kan names/shapes, curve2coeff, update_grid, regularization_loss, KAN stack).
#include "kernels/cpu/gcc12_avx512.h"  // first: Eigen's f64 GEMM (the reference solve) is instantiated here

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/bases/bspline.h"
#include "kernels/cpu/loops.h"
#include "nn/kan.h"
#include "nn/kan_linear.h"
#include "nn/linear.h"
#include "ops/kan.h"
#include "optim/optimizer.h"
#include "tests/helpers.h"

using namespace knot;
using knot::test::all_close;
using knot::test::max_abs_diff;
using knot::test::rand_leaf;

namespace {

// The textbook recursion over all functions of every degree, in float64, nothing clever.
double cox_de_boor(const std::vector<double>& t, int j, int p, double x) {
  if (p == 0) return (t[j] <= x && x < t[j + 1]) ? 1.0 : 0.0;
  double v = 0;
  const double d1 = t[j + p] - t[j], d2 = t[j + p + 1] - t[j + 1];
  if (d1 != 0) v += (x - t[j]) / d1 * cox_de_boor(t, j, p - 1, x);
  if (d2 != 0) v += (t[j + p + 1] - x) / d2 * cox_de_boor(t, j + 1, p - 1, x);
  return v;
}

std::vector<double> uniform_knots(int G, int k, double lo, double hi) {
  std::vector<double> t;
  const double h = (hi - lo) / G;
  for (int j = -k; j <= G + k; ++j) t.push_back(lo + j * h);
  return t;
}

// Uniform grid tensor (in, G+2k+1), every feature the same, optionally jittered (non-uniform knots).
Tensor make_grid(int64_t in, int G, int k, DType dt = DType::f64, double jitter = 0.0, uint64_t seed = 7) {
  Generator gen(seed);
  std::vector<double> all;
  const auto u = rand({in, static_cast<int64_t>(G + 2 * k + 1)}, DType::f64, &gen, -jitter, jitter).to_vector<double>();
  const double h = 2.0 / G;
  for (int64_t i = 0; i < in; ++i) {
    const auto t = uniform_knots(G, k, -1.0, 1.0);
    for (size_t j = 0; j < t.size(); ++j) all.push_back(t[j] + u[i * t.size() + j] * h);
  }
  return from_vector(all, {in, static_cast<int64_t>(G + 2 * k + 1)}).to(dt);
}

}  // namespace

TEST_CASE("kan: B-spline values match a literal Cox–de Boor recursion", "[kan]") {
  for (int k : {0, 1, 2, 3, 5}) {
    for (double jitter : {0.0, 0.3}) {
      const int G = 6;
      const Tensor grid = make_grid(3, G, k, DType::f64, jitter);
      Tensor x = rand_leaf({50, 3}, 11 + k, -1.6, 1.6).detach();
      const Tensor B = bspline_basis(x, grid, k);  // (50, 3, G+k)
      REQUIRE(B.shape() == Shape{50, 3, G + k});
      const auto xv = x.to_vector<double>(), bv = B.to_vector<double>(), gv = grid.to_vector<double>();
      const int nk = G + 2 * k + 1;
      double worst = 0;
      for (int n = 0; n < 50; ++n)
        for (int i = 0; i < 3; ++i) {
          const std::vector<double> t(gv.begin() + i * nk, gv.begin() + (i + 1) * nk);
          for (int j = 0; j < G + k; ++j)
            worst = std::max(worst, std::abs(bv[(n * 3 + i) * (G + k) + j] - cox_de_boor(t, j, k, xv[n * 3 + i])));
        }
      INFO("k = " << k << ", jitter = " << jitter);
      REQUIRE(worst < 1e-12);
      // The composite (primitive-op) basis agrees too.
      REQUIRE(max_abs_diff(bspline_basis_ref(x, grid, k), B) < 1e-12);
      // And the f32 kernel to f32 precision.
      REQUIRE(max_abs_diff(bspline_basis(x.to(DType::f32), grid.to(DType::f32), k).to(DType::f64), B) < 2e-5);
    }
  }
}

TEST_CASE("kan: B-splines are a partition of unity inside the grid and zero outside", "[kan]") {
  const int G = 5, k = 3;
  const Tensor grid = make_grid(2, G, k);  // knots -1-3h … 1+3h, h = 0.4
  std::vector<double> xs;
  for (int s = 0; s < 201; ++s) xs.push_back(-1.0 + 2.0 * s / 201.0);  // [lo, hi)
  std::vector<double> both;
  for (double v : xs) { both.push_back(v); both.push_back(-v * 0.999); }
  const Tensor x = from_vector(both, {static_cast<int64_t>(xs.size()), 2});
  const Tensor S = sum(bspline_basis(x, grid, k), {-1});
  for (double v : S.to_vector<double>()) REQUIRE(v == Approx(1.0).margin(1e-12));

  // Outside [t_0, t_{G+2k}) every function is 0 (t_0 = -2.2, t_last = 2.2); t_last itself is outside.
  const Tensor xo = from_values({-2.2000001, 2.2, 2.5, -7.0, 1e9, -1e9}, {3, 2}, DType::f64);
  for (double v : bspline_basis(xo, grid, k).to_vector<double>()) REQUIRE(v == 0.0);
  for (double v : bspline_basis_deriv(xo, grid, k).to_vector<double>()) REQUIRE(v == 0.0);
  // Half-open: x = t_0 is inside (B_0 = 0 there for k ≥ 1, but the span exists).
  const auto t = uniform_knots(G, k, -1, 1);
  REQUIRE(basis::bspline_span(t[0], t.data(), G + 2 * k + 1) == 0);
  REQUIRE(basis::bspline_span(t.back(), t.data(), G + 2 * k + 1) == -1);
  REQUIRE(basis::bspline_span(t[4], t.data(), G + 2 * k + 1) == 4);
  REQUIRE(basis::bspline_span(std::nan(""), t.data(), G + 2 * k + 1) == -1);
}

TEST_CASE("kan: B-spline derivatives match finite differences", "[kan]") {
  for (int k : {1, 2, 3, 4}) {
    const int G = 7, nk = G + 2 * k + 1;
    const Tensor grid = make_grid(1, G, k, DType::f64, 0.25, 3);
    const auto t = grid.to_vector<double>();
    Generator gen(5);
    const auto xs = rand({200}, DType::f64, &gen, t[0] + 1e-3, t[nk - 1] - 1e-3).to_vector<double>();
    std::vector<double> v(G + k), dv(G + k), vp(G + k), vm(G + k);
    double worst = 0;
    for (double x : xs) {
      // Skip points within the difference step of a knot (derivatives of k = 1 jump there).
      bool near = false;
      for (double tj : t) near = near || std::abs(x - tj) < 1e-5;
      if (near) continue;
      const double e = 1e-7;
      basis::bspline_all(x, t.data(), nk, k, v.data(), dv.data());
      basis::bspline_all(x + e, t.data(), nk, k, vp.data(), static_cast<double*>(nullptr));
      basis::bspline_all(x - e, t.data(), nk, k, vm.data(), static_cast<double*>(nullptr));
      for (int j = 0; j < G + k; ++j) worst = std::max(worst, std::abs(dv[j] - (vp[j] - vm[j]) / (2 * e)));
    }
    INFO("k = " << k);
    REQUIRE(worst < 1e-5);
  }
}

TEST_CASE("kan: fused kan_bspline equals the composite (dense basis + matmul) on both paths", "[kan]") {
  for (auto path : {SplinePath::dense, SplinePath::local}) {
    for (int G : {4, 20}) {
      const int k = 3;
      const int64_t in = 5, out = 4;
      const Tensor grid = make_grid(in, G, k, DType::f64, 0.2);
      Tensor x = rand_leaf({2, 9, in}, 1, -1.3, 1.3);  // leading dims are kept; some points outside the grid
      Tensor bw = rand_leaf({out, in}, 2), sw = rand_leaf({out, in, G + k}, 3), sc = rand_leaf({out, in}, 4);
      Tensor y = kan_bspline(x, grid, bw, sw, sc, k, path);
      Tensor yr = kan_bspline_ref(x, grid, bw, sw, sc, k);
      REQUIRE(y.shape() == Shape{2, 9, out});
      REQUIRE(max_abs_diff(y, yr) < 1e-12);
      Tensor w = rand_leaf({2, 9, out}, 9).detach();
      sum(mul(y, w)).backward();
      const Tensor gx = x.grad(), gb = bw.grad(), gs = sw.grad(), gc = sc.grad();
      for (const Tensor& t : {x, bw, sw, sc}) t.zero_grad();
      sum(mul(yr, w)).backward();
      INFO("path " << (path == SplinePath::dense ? "dense" : "local") << ", G = " << G);
      REQUIRE(max_abs_diff(gx, x.grad()) < 1e-11);
      REQUIRE(max_abs_diff(gb, bw.grad()) < 1e-11);
      REQUIRE(max_abs_diff(gs, sw.grad()) < 1e-11);
      REQUIRE(max_abs_diff(gc, sc.grad()) < 1e-11);

      // f32 on the same path, and without base branch or scaler.
      const Tensor y32 = kan_bspline(x.detach().to(DType::f32), grid.to(DType::f32), bw.detach().to(DType::f32),
                                     sw.detach().to(DType::f32), sc.detach().to(DType::f32), k, path);
      REQUIRE(max_abs_diff(y32.to(DType::f64), yr.detach()) < 1e-4);
      REQUIRE(max_abs_diff(kan_bspline(x, grid, Tensor(), sw, Tensor(), k, path),
                           kan_bspline_ref(x, grid, Tensor(), sw, Tensor(), k)) < 1e-12);
    }
  }
  // The automatic path picks dense for the smallest bases and local from kLocalPathMinBases on
  // (efficient-kan's default G = 5, k = 3 is local), and both agree.
  REQUIRE(kernels::resolve_spline_path(SplinePath::automatic, kernels::kLocalPathMinBases - 1) == SplinePath::dense);
  REQUIRE(kernels::resolve_spline_path(SplinePath::automatic, 8) == SplinePath::local);
  REQUIRE(kernels::resolve_spline_path(SplinePath::automatic, 53) == SplinePath::local);
}

TEST_CASE("kan: local and dense B-spline kernels agree (orders, grids, odd widths, points outside)", "[kan]") {
  // The local path's SIMD kernels (kernels/cpu/spline.cpp) split the out axis into chunks of 16, 8, 4,
  // 2, 1 vectors and the rows into sub-tiles of 64, and sort rows by span in backward: widths and row
  // counts that are not multiples of those, every order (k ≤ 3 compiled, k > 3 runtime), jittered
  // knots, and x beyond the grid on both sides.
  struct Case {
    int G, k;
    int64_t N, in, out;
    DType dt;
  };
  const Case cases[] = {{3, 1, 150, 7, 37, DType::f64},  {5, 2, 70, 5, 300, DType::f64},
                        {5, 3, 130, 9, 131, DType::f64}, {12, 3, 65, 4, 17, DType::f64},
                        {7, 4, 90, 3, 20, DType::f64},   {4, 5, 40, 2, 9, DType::f64},
                        {5, 3, 200, 6, 300, DType::f32}, {20, 2, 100, 5, 45, DType::f32},
                        {2, 0, 33, 3, 5, DType::f64},    {5, 3, 0, 4, 6, DType::f32}};
  for (const Case& c : cases) {
    INFO("G = " << c.G << ", k = " << c.k << ", N = " << c.N << ", in = " << c.in << ", out = " << c.out << ", "
                << (c.dt == DType::f64 ? "f64" : "f32"));
    const Tensor grid = make_grid(c.in, c.G, c.k, DType::f64, 0.3, 17 + c.G).to(c.dt);
    Generator gen(100 + c.k);
    // Knots span about [-1 - k·h, 1 + k·h]; draw x wider so some points fall outside.
    const double wide = 1.0 + (c.k + 1.5) * 2.0 / c.G;
    const Tensor x = rand({c.N, c.in}, c.dt, &gen, -wide, wide);
    const Tensor bw = rand({c.out, c.in}, c.dt, &gen, -1, 1);
    const Tensor coeff = rand({c.out, c.in, static_cast<int64_t>(c.G + c.k)}, c.dt, &gen, -1, 1);
    const Tensor g = rand({c.N, c.out}, c.dt, &gen, -1, 1);
    const double tol = c.dt == DType::f64 ? 1e-11 : 2e-4;
    for (bool base : {true, false}) {
      const Tensor b = base ? bw : Tensor();
      const Tensor yd = kernels::kan_bspline_fwd(x, grid, b, coeff, c.k, SplinePath::dense);
      const Tensor yl = kernels::kan_bspline_fwd(x, grid, b, coeff, c.k, SplinePath::local);
      REQUIRE(max_abs_diff(yl, yd) < tol);
      const auto gd = kernels::kan_bspline_bwd(x, grid, b, coeff, g, c.k, SplinePath::dense, true, base, true);
      const auto gl = kernels::kan_bspline_bwd(x, grid, b, coeff, g, c.k, SplinePath::local, true, base, true);
      REQUIRE(max_abs_diff(gl.dx, gd.dx) < tol);
      REQUIRE(max_abs_diff(gl.dcoeff, gd.dcoeff) < tol);
      if (base) REQUIRE(max_abs_diff(gl.dbase_w, gd.dbase_w) < tol);
      // Each gradient alone gives the same values.
      const auto only_dx = kernels::kan_bspline_bwd(x, grid, b, coeff, g, c.k, SplinePath::local, true, false, false);
      const auto only_dc = kernels::kan_bspline_bwd(x, grid, b, coeff, g, c.k, SplinePath::local, false, false, true);
      REQUIRE(max_abs_diff(only_dx.dx, gl.dx) == 0.0);
      REQUIRE(max_abs_diff(only_dc.dcoeff, gl.dcoeff) == 0.0);
    }
  }
}

TEST_CASE("kan: the local B-spline path does not depend on the thread count", "[kan]") {
  const int G = 6, k = 3;
  const int64_t N = 300, in = 10, out = 70;
  const Tensor grid = make_grid(in, G, k, DType::f32, 0.3);
  Generator gen(5);
  const Tensor x = rand({N, in}, DType::f32, &gen, -1.5, 1.5);
  const Tensor coeff = rand({out, in, G + k}, DType::f32, &gen, -1, 1);
  const Tensor g = rand({N, out}, DType::f32, &gen, -1, 1);
  const int saved = num_threads();
  auto run = [&](int threads) {
    set_num_threads(threads);
    const Tensor y = kernels::kan_bspline_fwd(x, grid, Tensor(), coeff, k, SplinePath::local);
    const auto gr = kernels::kan_bspline_bwd(x, grid, Tensor(), coeff, g, k, SplinePath::local, true, false, true);
    return std::vector<std::vector<double>>{y.to_vector<double>(), gr.dx.to_vector<double>(),
                                            gr.dcoeff.to_vector<double>()};
  };
  const auto one = run(1), two = run(2), three = run(3);
  set_num_threads(saved);
  REQUIRE(one == two);
  REQUIRE(one == three);
}

TEST_CASE("kan: gradcheck of the fused op in x and every weight (dense and local)", "[kan]") {
  for (auto path : {SplinePath::dense, SplinePath::local}) {
    const int G = 4, k = 3;
    const Tensor grid = make_grid(3, G, k, DType::f64, 0.2);
    Tensor x = rand_leaf({6, 3}, 21, -1.2, 1.2), bw = rand_leaf({2, 3}, 22), sw = rand_leaf({2, 3, G + k}, 23),
           sc = rand_leaf({2, 3}, 24);
    auto f = [&](const std::vector<Tensor>& in) { return kan_bspline(in[0], grid, in[1], in[2], in[3], k, path); };
    REQUIRE_GRADCHECK(f, (std::vector<Tensor>{x, bw, sw, sc}));
  }
  // The local path at other orders (k = 5 runs the runtime-order kernels), a jittered grid, a width
  // that is not a multiple of the SIMD width, and points beyond the grid.
  for (int k : {1, 2, 5}) {
    const int G = 5;
    const Tensor grid = make_grid(3, G, k, DType::f64, 0.25, 40 + k);
    Tensor x = rand_leaf({7, 3}, 31 + k, -1.4 - k * 0.4, 1.4 + k * 0.4), bw = rand_leaf({11, 3}, 32),
           sw = rand_leaf({11, 3, G + k}, 33), sc = rand_leaf({11, 3}, 34);
    auto f = [&](const std::vector<Tensor>& in) {
      return kan_bspline(in[0], grid, in[1], in[2], in[3], k, SplinePath::local);
    };
    INFO("local path, k = " << k);
    REQUIRE_GRADCHECK(f, (std::vector<Tensor>{x, bw, sw, sc}));
  }
}

TEST_CASE("kan: KANLinear has efficient-kan's parameter names, shapes and defaults", "[kan]") {
  nn::KANLinear layer(4, 3);
  const auto params = layer.named_parameters();
  REQUIRE(params.size() == 3);
  REQUIRE(params[0].first == "base_weight");
  REQUIRE(params[0].second.shape() == Shape{3, 4});
  REQUIRE(params[1].first == "spline_weight");
  REQUIRE(params[1].second.shape() == Shape{3, 4, 8});  // G + k = 5 + 3
  REQUIRE(params[2].first == "spline_scaler");
  REQUIRE(params[2].second.shape() == Shape{3, 4});
  const auto bufs = layer.named_buffers();
  REQUIRE(bufs.size() == 1);
  REQUIRE(bufs[0].first == "grid");
  REQUIRE(bufs[0].second.shape() == Shape{4, 12});  // G + 2k + 1
  REQUIRE_FALSE(bufs[0].second.requires_grad());
  // Knots t_j = -1 + j·0.4 for j = -3 … 8, every feature alike.
  const auto g = layer.grid.to_vector<double>();
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 12; ++j) REQUIRE(g[i * 12 + j] == Approx(-1.0 + (j - 3) * 0.4).margin(1e-6));
  REQUIRE(layer.num_parameters() == 3 * 4 + 3 * 4 * 8 + 3 * 4);
  // Kaiming-uniform bound of base_weight: gain √(2/(1+5)) · √(3/in) = 1/√in = 0.5.
  for (double v : layer.base_weight.to_vector<double>()) REQUIRE(std::abs(v) <= 0.5);
  // Initial spline weights are small: a fit of noise of size ≤ scale_noise/(2G) = 0.01.
  for (double v : layer.spline_weight.to_vector<double>()) REQUIRE(std::abs(v) < 0.1);

  nn::KANLinearOptions o;
  o.enable_standalone_scale_spline = false;
  o.bias = true;
  nn::KANLinear nb(4, 3, o);
  REQUIRE(nb.named_parameters().size() == 3);  // base_weight, spline_weight, bias
  REQUIRE_FALSE(nb.spline_scaler.defined());
}

TEST_CASE("kan: KANLinear gradcheck in x and every parameter, leading dims kept", "[kan]") {
  for (const char* act : {"silu", "gelu"}) {
    nn::KANLinearOptions o;
    o.grid_size = 3;
    o.spline_order = 2;
    o.dtype = DType::f64;
    o.base_activation = act;
    o.bias = true;
    nn::KANLinear layer(3, 2, o);
    Tensor x = rand_leaf({2, 3, 3}, 31, -1.1, 1.1);
    REQUIRE(layer.forward(x).shape() == Shape{2, 3, 2});
    std::vector<Tensor> inputs{x};
    for (auto& [n, p] : layer.named_parameters()) inputs.push_back(p);
    auto f = [&](const std::vector<Tensor>& in) {
      (void)in;  // the parameters are the layer's own tensors, perturbed in place by gradcheck
      return layer.forward(in[0]);
    };
    INFO("base_activation " << act);
    REQUIRE_GRADCHECK(f, inputs);
  }
}

TEST_CASE("kan: curve2coeff recovers a known spline's coefficients", "[kan]") {
  nn::KANLinearOptions o;
  o.grid_size = 6;
  o.dtype = DType::f64;
  nn::KANLinear layer(2, 3, o);
  const int64_t nb = 9, N = 200;
  Generator gen(3);
  const Tensor C = rand({3, 2, nb}, DType::f64, &gen, -1, 1);      // (out, in, nb) known coefficients
  const Tensor x = rand({N, 2}, DType::f64, &gen, -1.0, 1.0);     // inside the grid
  const Tensor B = layer.b_splines(x);                            // (N, in, nb)
  // y[n, i, o] = Σ_j B[n, i, j]·C[o, i, j]
  const Tensor y = sum(mul(unsqueeze(B, 2), unsqueeze(permute(C, {1, 0, 2}), 0)), {-1});  // (N, in, out)
  const Tensor fit = layer.curve2coeff(x, y);
  REQUIRE(fit.shape() == Shape{3, 2, nb});
  REQUIRE(max_abs_diff(fit, C) < 1e-9);
}

TEST_CASE("kan: update_grid keeps the layer's outputs on its batch", "[kan]") {
  nn::KANLinearOptions o;
  o.dtype = DType::f64;
  nn::KANLinear layer(3, 4, o, nullptr);
  {
    // Make the spline part non-trivial.
    NoGradGuard ng;
    Generator gen(8);
    layer.spline_weight.copy_(rand({4, 3, 8}, DType::f64, &gen, -1, 1));
  }
  Generator gen(9);
  const Tensor x = rand({256, 3}, DType::f64, &gen, -0.8, 0.6);  // a batch narrower than the grid
  const Tensor before = layer.forward(x).detach();
  const auto old_grid = layer.grid.to_vector<double>();
  layer.update_grid(x, 0.01);
  const Tensor after = layer.forward(x).detach();
  // New knots: quantiles of the batch (the interior spans ≈ [min, max] ± margin).
  const auto g = layer.grid.to_vector<double>();
  REQUIRE(g != old_grid);
  const auto xv = x.to_vector<double>();
  double mn = 1e9, mx = -1e9;
  for (int n = 0; n < 256; ++n) { mn = std::min(mn, xv[n * 3]); mx = std::max(mx, xv[n * 3]); }
  REQUIRE(g[3] == Approx(0.02 * (mn - 0.01) + 0.98 * mn).margin(1e-12));
  REQUIRE(g[3 + 5] == Approx(0.02 * (mx + 0.01) + 0.98 * mx).margin(1e-12));
  // Stated tolerance: the refit is a least-squares projection onto the new spline space; on this
  // batch the outputs move by < 2% of their RMS.
  const double rms = std::sqrt(mean(mul(before, before)).item());
  const double err = std::sqrt(mean(mul(sub(after, before), sub(after, before))).item());
  INFO("rms " << rms << " err " << err);
  REQUIRE(err < 0.02 * rms);
}

TEST_CASE("kan: regularization_loss by hand", "[kan]") {
  nn::KANLinearOptions o;
  o.grid_size = 1;
  o.spline_order = 1;  // 2 functions per input
  o.dtype = DType::f64;
  nn::KANLinear layer(2, 1, o);
  {
    NoGradGuard ng;
    layer.spline_weight.copy_(from_values({1.0, -3.0, 0.5, 0.5}, {1, 2, 2}, DType::f64));
  }
  // l1 = mean |w| over the last dim = [2, 0.5]; L = 2.5; p = [0.8, 0.2]
  const double L = 2.5, H = -(0.8 * std::log(0.8) + 0.2 * std::log(0.2));
  REQUIRE(layer.regularization_loss().item() == Approx(L + H).epsilon(1e-12));
  REQUIRE(layer.regularization_loss(0.5, 2.0).item() == Approx(0.5 * L + 2 * H).epsilon(1e-12));
  layer.regularization_loss(1, 1).backward();
  REQUIRE(layer.spline_weight.grad().defined());
}

TEST_CASE("kan: bad shapes give errors naming the op", "[kan]") {
  const Tensor grid = make_grid(3, 5, 3);
  const Tensor x = zeros({4, 3}, DType::f64), bw = zeros({2, 3}, DType::f64), sw = zeros({2, 3, 8}, DType::f64);
  REQUIRE_THROWS_WITH(kan_bspline(zeros({4, 5}, DType::f64), grid, bw, sw, Tensor(), 3),
                      Catch::Contains("kan_bspline") && Catch::Contains("(4, 5)"));
  REQUIRE_THROWS_WITH(kan_bspline(x, grid, bw, zeros({2, 3, 7}, DType::f64), Tensor(), 3),
                      Catch::Contains("kan_bspline: spline_weight (2, 3, 7)"));
  REQUIRE_THROWS_WITH(kan_bspline(x, grid, zeros({3, 2}, DType::f64), sw, Tensor(), 3),
                      Catch::Contains("kan_bspline: base_weight (3, 2)"));
  REQUIRE_THROWS_WITH(kan_bspline(x, grid, bw, sw, zeros({2, 4}, DType::f64), 3),
                      Catch::Contains("kan_bspline: spline_scaler (2, 4)"));
  REQUIRE_THROWS_WITH(kan_bspline(x.to(DType::f32), grid, bw, sw, Tensor(), 3), Catch::Contains("kan_bspline"));
  REQUIRE_THROWS_WITH(kan_bspline(x, grid, bw, sw, Tensor(), 12), Catch::Contains("kan_bspline: spline order"));
  nn::KANLinear layer(3, 2);
  REQUIRE_THROWS_WITH(layer.forward(zeros({4, 2})), Catch::Contains("KANLinear: input (4, 2)"));
}

TEST_CASE("kan: KAN stack and the registry", "[kan]") {
  nn::KAN kan({3, 5, 2}, "bspline", {{"dtype", "f64"}, {"grid_size", 4}, {"seed", 1}});
  const auto names = kan.named_parameters();
  REQUIRE(names.size() == 6);
  REQUIRE(names[0].first == "layers.0.base_weight");
  REQUIRE(names[1].first == "layers.0.spline_weight");
  REQUIRE(names[1].second.shape() == Shape{5, 3, 7});
  REQUIRE(names[5].first == "layers.1.spline_scaler");
  REQUIRE(kan.named_buffers()[1].first == "layers.1.grid");
  Generator gen(4);
  const Tensor x = rand({2, 16, 3}, DType::f64, &gen, -2, 2);
  REQUIRE(kan.forward(x).shape() == Shape{2, 16, 2});
  const Tensor g0 = kan.named_buffers()[0].second.clone();
  const Tensor y1 = kan.forward(x, /*update_grid=*/true);
  REQUIRE(max_abs_diff(kan.named_buffers()[0].second, g0) > 0.1);  // grid moved to the batch range
  REQUIRE(y1.shape() == Shape{2, 16, 2});
  REQUIRE(std::isfinite(kan.regularization_loss().item()));

  // Same seed, same layer.
  auto a = nn::make_kan_layer("kan_bspline", 3, 2, {{"seed", 5}});
  auto b = nn::make_kan_layer("bspline", 3, 2, {{"seed", 5}});
  REQUIRE(max_abs_diff(a->named_parameters()[1].second, b->named_parameters()[1].second) == 0.0);
  REQUIRE_THROWS_WITH(nn::make_kan_layer("bspline", 3, 2, {{"grid_sise", 5}}),
                      Catch::Contains("config 'kan_bspline': unknown key 'grid_sise'; did you mean 'grid_size'?"));
  REQUIRE_THROWS_WITH(nn::make_kan_layer("bspline", 3, 2, {{"grid_size", "five"}}),
                      Catch::Contains("config 'kan_bspline': key 'grid_size' must be an integer, got string \"five\""));
  REQUIRE_THROWS_WITH(nn::make_kan_layer("kan_nope", 3, 2), Catch::Contains("unknown basis 'kan_nope'"));
}

namespace {

// update_grid's refit as first written, kept here as the reference: the spline part of the layer
// on x per feature, u[n, i, :] = B_old(x[n, i])·C_old[:, i, :]ᵀ (C = the scaled spline weight), then
// per feature the minimum-norm least-squares C_new with B_new(x[:, i])·C_new[:, i, :]ᵀ ≈ u[:, i, :]
// (complete orthogonal decomposition of the N x nb matrix), divided by the scaler as update_grid
// stores it. `new_grid` is the layer's grid after the update, possibly of another grid size (the
// knot placement is checked on its own in "update_grid keeps the layer's outputs").
Tensor reference_refit(const nn::KANLinear& before, const Tensor& new_grid, const Tensor& x) {
  const int64_t N = x.size(0), in = before.in_features(), out = before.out_features();
  const int k = before.options().spline_order;
  const int64_t nb0 = before.options().grid_size + k, nb = new_grid.size(1) - k - 1;
  const auto B0 = bspline_basis(x, before.grid, k).to_vector<double>();  // (N, in, nb0)
  const auto B1 = bspline_basis(x, new_grid, k).to_vector<double>();     // (N, in, nb)
  const auto C = before.scaled_spline_weight().contiguous().to_vector<double>();  // (out, in, nb)
  const auto S = before.spline_scaler.defined() ? before.spline_scaler.contiguous().to_vector<double>()
                                                : std::vector<double>(static_cast<size_t>(out * in), 1.0);
  std::vector<double> res(static_cast<size_t>(out * in * nb));
  for (int64_t i = 0; i < in; ++i) {
    Eigen::MatrixXd A(N, nb), U(N, out);
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t j = 0; j < nb; ++j) A(n, j) = B1[(n * in + i) * nb + j];
      for (int64_t o = 0; o < out; ++o) {
        double s = 0;
        for (int64_t j = 0; j < nb0; ++j) s += B0[(n * in + i) * nb0 + j] * C[(o * in + i) * nb0 + j];
        U(n, o) = s;
      }
    }
    const Eigen::MatrixXd X = A.completeOrthogonalDecomposition().solve(U);  // (nb, out)
    for (int64_t o = 0; o < out; ++o) {
      const double s = S[o * in + i];
      const double safe = std::abs(s) < 1e-12 ? 1.0 : s;
      for (int64_t j = 0; j < nb; ++j) res[(o * in + i) * nb + j] = X(j, o) / safe;
    }
  }
  return from_vector(res, {out, in, nb});
}

}  // namespace

TEST_CASE("kan: update_grid's refit equals the direct least-squares solve within 1e-9 (f64)", "[kan]") {
  struct Case {
    const char* what;
    int64_t in, out, N;
    int G, k;
    bool scaler;
    double lo, hi;
  };
  const Case cases[] = {
      {"a batch narrower than the grid", 3, 4, 256, 5, 3, true, -0.8, 0.6},
      {"no standalone scaler, order 2", 2, 5, 300, 7, 2, false, -1.5, 1.2},
      {"fewer rows than functions (minimum-norm solution)", 3, 2, 5, 5, 3, true, -0.5, 0.5},
      {"many outputs", 4, 64, 500, 10, 3, true, -2.0, 2.0},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    nn::KANLinearOptions o;
    o.dtype = DType::f64;
    o.grid_size = c.G;
    o.spline_order = c.k;
    o.enable_standalone_scale_spline = c.scaler;
    nn::KANLinear layer(c.in, c.out, o, nullptr);
    Generator gen(11);
    {
      NoGradGuard ng;
      layer.spline_weight.copy_(rand(layer.spline_weight.shape(), DType::f64, &gen, -1, 1));
      if (c.scaler) {
        Tensor s = rand(layer.spline_scaler.shape(), DType::f64, &gen, 0.2, 1.5);
        auto sv = s.to_vector<double>();
        sv[1] = 0.0;  // a zero scaler: update_grid stores the scaled refit there (nothing to divide by)
        layer.spline_scaler.copy_(from_vector(sv, s.shape()));
      }
    }
    nn::KANLinear before(c.in, c.out, o, nullptr);
    {
      NoGradGuard ng;
      before.spline_weight.copy_(layer.spline_weight);
      if (c.scaler) before.spline_scaler.copy_(layer.spline_scaler);
      before.grid.copy_(layer.grid);
    }
    const Tensor x = rand({c.N, c.in}, DType::f64, &gen, c.lo, c.hi);
    layer.update_grid(x, 0.01);
    const Tensor want = reference_refit(before, layer.grid, x);
    const double scale = std::max(1.0, std::sqrt(mean(mul(want, want)).item()));
    INFO("max |diff| " << max_abs_diff(layer.spline_weight, want) << " scale " << scale);
    REQUIRE(max_abs_diff(layer.spline_weight, want) < 1e-9 * scale);
  }
}

TEST_CASE("kan: update_grid refuses NaN or Inf inputs and leaves the layer as it was", "[kan]") {
  nn::KANLinearOptions o;
  o.dtype = DType::f64;
  nn::KANLinear layer(3, 2, o, nullptr);
  Generator gen(5);
  for (const double bad : {std::nan(""), std::numeric_limits<double>::infinity()}) {
    auto xv = rand({64, 3}, DType::f64, &gen, -1, 1).to_vector<double>();
    xv[17 * 3 + 1] = bad;  // row 17, feature 1
    const Tensor grid0 = layer.grid.clone(), w0 = layer.spline_weight.clone();
    REQUIRE_THROWS_WITH(layer.update_grid(from_vector(xv, {64, 3}), 0.01),
                        Catch::Contains("non-finite") && Catch::Contains("feature 1"));
    REQUIRE(max_abs_diff(layer.grid, grid0) == 0.0);
    REQUIRE(max_abs_diff(layer.spline_weight, w0) == 0.0);
  }
  // In a stack, the error names the layer.
  nn::KAN kan({3, 4, 1}, "bspline", {{"dtype", "f64"}, {"seed", 2}});
  auto xv = rand({8, 3}, DType::f64, &gen, -1, 1).to_vector<double>();
  xv[5] = std::nan("");
  REQUIRE_THROWS_WITH(kan.forward(from_vector(xv, {8, 3}), /*update_grid=*/true), Catch::Contains("layers.0"));
}

TEST_CASE("kan: a basis without a sparsity penalty says so instead of adding 0", "[kan]") {
  auto cheb = nn::make_kan_layer("chebyshev", 3, 2, {{"dtype", "f64"}});
  REQUIRE_THROWS_WITH(cheb->regularization_loss(), Catch::Contains("kan_chebyshev") && Catch::Contains("regulari"));
  REQUIRE_FALSE(cheb->has_regularization());
  auto bs = nn::make_kan_layer("bspline", 3, 2, {{"dtype", "f64"}});
  REQUIRE(bs->has_regularization());
  // The check the trainer and `knot fit` run before any work names the first layer without one.
  nn::KAN kan({2, 3, 1}, "chebyshev", {{"dtype", "f64"}});
  REQUIRE_THROWS_WITH(nn::check_kan_regularization(kan, "fit.train.lamb"),
                      Catch::Contains("fit.train.lamb") && Catch::Contains("layers.0") &&
                          Catch::Contains("kan_chebyshev"));
  nn::KAN ok({2, 3, 1}, "bspline", {{"dtype", "f64"}});
  REQUIRE_NOTHROW(nn::check_kan_regularization(ok, "fit.train.lamb"));
  nn::Linear lin(3, 2);
  REQUIRE_THROWS_WITH(nn::check_kan_regularization(lin, "train.kan_regularization"),
                      Catch::Contains("train.kan_regularization") && Catch::Contains("no KAN layer"));
}

TEST_CASE("kan: refine_grid changes the grid size, keeps the function and equals the direct solve", "[kan]") {
  for (const int G1 : {10, 20, 3}) {
    INFO("grid 5 -> " << G1);
    nn::KANLinearOptions o;
    o.dtype = DType::f64;
    nn::KANLinear layer(3, 4, o, nullptr), before(3, 4, o, nullptr);
    Generator gen(21);
    {
      NoGradGuard ng;
      layer.spline_weight.copy_(rand(layer.spline_weight.shape(), DType::f64, &gen, -1, 1));
      before.spline_weight.copy_(layer.spline_weight);
      before.spline_scaler.copy_(layer.spline_scaler);
    }
    const Tensor x = rand({400, 3}, DType::f64, &gen, -0.9, 0.9);
    const Tensor y0 = layer.forward(x).detach();
    layer.refine_grid(x, G1, 0.01);
    REQUIRE(layer.options().grid_size == G1);
    REQUIRE(layer.grid.shape() == Shape{3, G1 + 7});
    REQUIRE(layer.spline_weight.shape() == Shape{4, 3, G1 + 3});
    const Tensor want = reference_refit(before, layer.grid, x);
    REQUIRE(max_abs_diff(layer.spline_weight, want) < 1e-9);
    const Tensor y1 = layer.forward(x).detach();
    const double rms = std::sqrt(mean(mul(y0, y0)).item());
    const double err = std::sqrt(mean(mul(sub(y1, y0), sub(y1, y0))).item());
    INFO("rms " << rms << " err " << err);
    // A finer grid holds the old function almost exactly (its splines are not nested in the new
    // space, the knots move to the data); a coarser one (3) only approximately.
    REQUIRE(err < (G1 > 5 ? 0.01 : 0.1) * rms);
  }
  // The stack: every layer refined on the input the stack fed it before.
  nn::KAN kan({2, 3, 1}, "bspline", {{"dtype", "f64"}, {"seed", 4}});
  Generator gen(6);
  const Tensor x = rand({300, 2}, DType::f64, &gen, -1, 1);
  const Tensor y0 = kan.forward(x).detach();
  kan.refine_grid(x, 12);
  for (const auto& [name, t] : kan.named_buffers()) REQUIRE(t.size(1) == 12 + 7);
  const Tensor y1 = kan.forward(x).detach();
  REQUIRE(std::sqrt(mean(mul(sub(y1, y0), sub(y1, y0))).item()) < 0.01 * std::sqrt(mean(mul(y0, y0)).item()));
  // Bases without a grid say so.
  nn::KAN cheb({2, 1}, "chebyshev", {{"dtype", "f64"}});
  REQUIRE_THROWS_WITH(cheb.refine_grid(x, 10), Catch::Contains("layers.0") && Catch::Contains("no grid to refine"));
  nn::KANLinear l2(3, 4, nn::KANLinearOptions{}, nullptr);
  REQUIRE_THROWS_WITH(l2.refine_grid(rand({8, 3}), 0), Catch::Contains("grid_size must be >= 1"));
}

TEST_CASE("kan: a layer loads the weights of a grid-extended one (its grid size), and its Adam moments follow",
          "[kan]") {
  nn::KANLinearOptions o;
  o.dtype = DType::f64;
  o.grid_size = 3;
  nn::KANLinear extended(3, 4, o, nullptr), fresh(3, 4, o, nullptr);
  Generator gen(31);
  const Tensor x = rand({200, 3}, DType::f64, &gen, -0.9, 0.9);
  extended.refine_grid(x, 9);
  const nn::NamedTensors state = extended.state_dict();
  optim::Adam adam(fresh.parameters(), 1e-3);
  fresh.load_state_dict(state);
  REQUIRE(fresh.options().grid_size == 9);
  REQUIRE(max_abs_diff(fresh.forward(x).detach(), extended.forward(x).detach()) == 0.0);
  // The optimizer built before the load: the resized weight's moments are re-allocated, zero.
  REQUIRE(adam.reset_resized_moments() == 1);
  const auto ps = fresh.parameters();
  const nn::NamedTensors st = adam.state();  // exp_avg, exp_avg_sq per parameter, in order
  REQUIRE(st.size() == 2 * ps.size());
  for (size_t i = 0; i < ps.size(); ++i) {
    REQUIRE(st[2 * i].second.shape() == ps[i].shape());
    REQUIRE(st[2 * i + 1].second.shape() == ps[i].shape());
  }
  REQUIRE(adam.reset_resized_moments() == 0);
  // Shapes that do not describe one grid size (grid of G = 9, weights of G = 8) stay an error naming
  // the tensor, and the layer is left as it was.
  nn::KANLinear other(3, 4, o, nullptr);
  nn::NamedTensors bad = state;
  for (auto& [name, t] : bad)
    if (name == "spline_weight") t = t.slice(2, 0, 11);
  REQUIRE_THROWS_WITH(other.load_state_dict(bad), Catch::Contains("'spline_weight' has shape"));
  REQUIRE(other.options().grid_size == 3);
  REQUIRE(other.grid.shape() == Shape{3, 3 + 7});
}

TEST_CASE("kan: per-edge functions sum to the layer's output", "[kan]") {
  for (const char* act : {"silu", "gelu"}) {
    INFO(act);
    nn::KANLinearOptions o;
    o.dtype = DType::f32;
    o.base_activation = act;
    o.bias = true;
    nn::KANLinear layer(3, 4, o, nullptr);
    Generator gen(2);
    {
      NoGradGuard ng;
      layer.spline_weight.copy_(rand(layer.spline_weight.shape(), DType::f32, &gen, -1, 1));
      layer.bias.copy_(rand({4}, DType::f32, &gen, -1, 1));
    }
    const Tensor x = rand({50, 3}, DType::f32, &gen, -1.5, 1.5);  // some points outside the grid
    const Tensor e = layer.edge_values(x);
    REQUIRE(e.shape() == Shape{50, 4, 3});
    REQUIRE(e.dtype() == DType::f64);
    const Tensor y = add(sum(e, {2}), layer.bias.to(DType::f64));
    REQUIRE(max_abs_diff(y, layer.forward(x).detach().to(DType::f64)) < 1e-5);
  }
  // rbf's LayerNorm makes every edge depend on all inputs: no per-edge functions, an error naming it.
  auto rbf = nn::make_kan_layer("rbf", 3, 2, {});
  REQUIRE_THROWS_WITH(rbf->edge_values(rand({4, 3})), Catch::Contains("kan_rbf") && Catch::Contains("per-edge"));
}
