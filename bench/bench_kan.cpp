// KAN vs MLP kernels: every registered basis (nn::basis_names(), so a new basis joins the sweep with
// no edits here) against a Linear layer and a 2-layer MLP, forward and forward+backward.
//
// Grid (all registered; bench/run_kan_bench.sh runs a documented subset by filter):
//   N ∈ {256, 4096, 16384} rows, width = in = out ∈ {64, 256, 1024}, G ∈ {5, 10, 20, 50}
//   (G is the basis' own size knob — grid_size, num_grids or degree, found by asking the layer
//   factory; a basis without one runs once, shown as G:-).
// Names:
//   KAN/<basis>/<fwd|fwdbwd>/N:<N>/w:<w>/G:<G>          the KAN layer, in = out = w
//   Linear/<fwd|fwdbwd>/N:<N>/w:<w>                     Linear(w, w), no bias
//   MLP_io/<fwd|fwdbwd>/N:<N>/w:<w>                     (a) same in/out: Linear(w,w)+relu+Linear(w,w)
//   MLP_params/<basis>/<fwd|fwdbwd>/N:<N>/w:<w>/G:<G>   (b) same parameter count as that KAN layer:
//                                                       hidden h = round((P_kan − w) / (2w + 1))
// FLOP per iteration (forward; forward+backward counts 3× — dx and dW are each one more GEMM):
//   Linear            2·N·in·out
//   MLP [in, h, out]  2·N·(in·h + h·out)
//   B-spline, dense   2·N·in·out·(G+k+1)      GEMM of [silu(x) | B(x)] (N, in·(G+k+1)) by the weights
//   B-spline, local   2·N·in·out·(k+2)        k+1 non-zero B-splines + the silu base per input
//   other bases       2·N·P                   one multiply-add per mixing weight (P = parameters)
// Counters: FLOP, GFLOP/s, frac_peak (of the measured FMA peak, bench/peak.h), params, peak_bytes
// (knot's host allocator high-water mark during one iteration, minus the live bytes before it:
// tensors plus the KAN kernels' scratch), rss_delta (first call in the process only: growth of
// ru_maxrss during one iteration — meaningful when one benchmark runs per process, as
// bench/compare_pytorch.py does), and for KAN layers x_linear = t_kan / t_linear, with Linear(w, w)
// timed inside the same benchmark function on the same x, twice after every KAN step (timer paused),
// as the ratio of the medians: both sides see the same machine load.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "bench/peak.h"
#include "core/allocator.h"
#include "core/rng.h"
#include "kernels/cpu/loops.h"
#include "kernels/spline.h"
#include "nn/basis_registry.h"
#include "nn/linear.h"
#include "nn/mlp.h"
#include "ops/ops.h"

using namespace knot;

namespace {

constexpr int64_t kRows[] = {256, 4096, 16384};
constexpr int64_t kWidths[] = {64, 256, 1024};
constexpr int kGrids[] = {5, 10, 20, 50};
constexpr int kSplineOrder = 3;  // efficient-kan's default k, used by the B-spline FLOP formula

using Clock = std::chrono::steady_clock;

// One step of a layer: forward only (no graph) or forward + backward of sum(y) with x requiring grad.
template <typename Fwd>
void step(Fwd&& fwd, nn::Module& m, Tensor& x, bool backward) {
  if (!backward) {
    NoGradGuard ng;
    Tensor y = fwd(x);
    benchmark::DoNotOptimize(y.raw_data());
    return;
  }
  m.zero_grad();
  x.zero_grad();
  sum(fwd(x)).backward();
  benchmark::DoNotOptimize(x.grad().raw_data());
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

long maxrss_bytes() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss * 1024L;  // Linux: KiB
}

// Runs the benchmark loop and adds the common counters and the peak-memory measurement. `between`
// (may be empty) runs after every timed step with the timer paused: BM_Kan times its Linear there.
// Returns the seconds of every timed step.
template <typename Fwd, typename Between>
std::vector<double> run_loop(benchmark::State& st, const std::string& name, Fwd&& fwd, nn::Module& m, Tensor& x,
                             bool backward, double flops, Between&& between) {
  // Peak memory and first-call RSS growth from one untimed step (which also warms up).
  static std::map<std::string, double> first_rss;
  const long rss0 = maxrss_bytes();
  const size_t live0 = cpu_live_bytes();
  cpu_reset_peak();
  step(fwd, m, x, backward);
  const double peak = static_cast<double>(cpu_peak_bytes() - live0);
  if (!first_rss.count(name)) first_rss[name] = static_cast<double>(maxrss_bytes() - rss0);

  std::vector<double> times;
  for (auto _ : st) {
    const auto t0 = Clock::now();
    step(fwd, m, x, backward);
    times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    st.PauseTiming();
    between();
    st.ResumeTiming();
  }

  const double peak_gf = bench::peak_gflops_f32(num_threads());
  st.counters["FLOP"] = flops;
  st.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["frac_peak"] = benchmark::Counter(flops * 1e-9 / peak_gf, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["params"] = static_cast<double>(m.num_parameters());
  st.counters["peak_bytes"] = benchmark::Counter(peak, benchmark::Counter::kDefaults, benchmark::Counter::kIs1024);
  st.counters["rss_delta"] = benchmark::Counter(first_rss[name], benchmark::Counter::kDefaults, benchmark::Counter::kIs1024);
  return times;
}
template <typename Fwd>
std::vector<double> run_loop(benchmark::State& st, const std::string& name, Fwd&& fwd, nn::Module& m, Tensor& x, bool backward,
                double flops) {
  return run_loop(st, name, fwd, m, x, backward, flops, [] {});
}

double linear_flops(int64_t N, int64_t in, int64_t out) { return 2.0 * N * in * out; }
double mlp_flops(int64_t N, int64_t in, int64_t h, int64_t out) { return 2.0 * N * (in * h + h * out); }

// ---- the size knob of each basis ---------------------------------------------------------------

// The option that sets a basis' size (grid_size, num_grids, degree), found by asking the factory:
// unknown keys are errors, so the first key it accepts is the knob. "" when it has none.
std::string size_knob(const std::string& basis) {
  for (const char* key : {"grid_size", "num_grids", "degree"}) {
    try {
      nn::make_kan_layer(basis, 4, 4, {{key, 5}});
      return key;
    } catch (const std::exception&) {
    }
  }
  return "";
}

struct KanPoint {
  std::string basis, knob;
  int G = 0;         // 0: the basis' defaults (no knob)
  std::string path;  // B-spline only: "" = automatic, else "dense" or "local" (forced)
  nlohmann::json options() const {
    nlohmann::json o = nlohmann::json::object();
    if (!knob.empty()) o[knob] = G;
    if (!path.empty()) o["path"] = path;
    return o;
  }
  std::string label() const { return path.empty() ? basis : basis + "_" + path; }
  std::string g_label() const { return G ? std::to_string(G) : std::string("-"); }
};

std::shared_ptr<nn::KANLayer> make_kan(const KanPoint& p, int64_t w) { return nn::make_kan_layer(p.basis, w, w, p.options()); }

double kan_flops(const KanPoint& p, const nn::KANLayer& layer, int64_t N, int64_t w) {
  if (p.basis == "bspline") {
    const int64_t nb = p.G + kSplineOrder;
    const auto chosen = p.path == "local"   ? kernels::SplinePath::local
                        : p.path == "dense" ? kernels::SplinePath::dense
                                            : kernels::SplinePath::automatic;
    if (kernels::resolve_spline_path(chosen, nb) == kernels::SplinePath::local)
      return 2.0 * N * w * w * (kSplineOrder + 2);
    return 2.0 * N * w * w * (nb + 1);
  }
  return 2.0 * N * static_cast<double>(layer.num_parameters());
}

// MLP [w, h, w] (with biases) whose parameter count is closest to P.
int64_t matched_hidden(int64_t P, int64_t w) {
  return std::max<int64_t>(1, std::llround(static_cast<double>(P - w) / static_cast<double>(2 * w + 1)));
}

Tensor bench_input(int64_t N, int64_t w) { return rand({N, w}, DType::f32, nullptr, -1.0, 1.0); }

// ---- benchmark functions -----------------------------------------------------------------------

void BM_Kan(benchmark::State& st, std::string name, KanPoint p, int64_t N, int64_t w, bool backward) {
  auto layer = make_kan(p, w);
  nn::Linear lin(w, w, /*bias=*/false);
  Tensor x = bench_input(N, w);
  if (backward) x.requires_grad_();
  auto kan_fwd = [&](const Tensor& v) { return layer->forward(v); };
  auto lin_fwd = [&](const Tensor& v) { return lin.forward(v); };

  // Linear(w, w) on the same x, same mode, timed right after every KAN step (timer paused), twice
  // per step: the ratio of the two medians compares them under the same machine load.
  std::vector<double> tl;
  bool warm = false;
  auto time_linear = [&] {
    if (!warm) step(lin_fwd, lin, x, backward);  // first call: warm-up, after the memory measurement
    warm = true;
    for (int r = 0; r < 2; ++r) {
      const auto t0 = Clock::now();
      step(lin_fwd, lin, x, backward);
      tl.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
  };
  const double t_kan = median(run_loop(st, name, kan_fwd, *layer, x, backward,
                                       (backward ? 3 : 1) * kan_flops(p, *layer, N, w), time_linear));
  const double t_lin = median(tl);
  st.counters["x_linear"] = t_kan / t_lin;
  st.counters["t_linear_ms"] = t_lin * 1e3;
  if (p.basis == "bspline") st.counters["G+k+1"] = p.G + kSplineOrder + 1;
}

void BM_Linear(benchmark::State& st, std::string name, int64_t N, int64_t w, bool backward) {
  nn::Linear lin(w, w, /*bias=*/false);
  Tensor x = bench_input(N, w);
  if (backward) x.requires_grad_();
  run_loop(st, name, [&](const Tensor& v) { return lin.forward(v); }, lin, x, backward,
           (backward ? 3 : 1) * linear_flops(N, w, w));
}

void BM_Mlp(benchmark::State& st, std::string name, int64_t N, int64_t w, int64_t h, bool backward) {
  nn::MLP mlp({w, h, w}, "relu", /*bias=*/true);
  Tensor x = bench_input(N, w);
  if (backward) x.requires_grad_();
  run_loop(st, name, [&](const Tensor& v) { return mlp.forward(v); }, mlp, x, backward,
           (backward ? 3 : 1) * mlp_flops(N, w, h, w));
  st.counters["hidden"] = static_cast<double>(h);
}

// (b): the hidden width comes from the KAN layer's parameter count, built here (not at start-up,
// where building every registered layer would cost seconds and gigabytes).
void BM_MlpParams(benchmark::State& st, std::string name, KanPoint p, int64_t N, int64_t w, bool backward) {
  const int64_t P = make_kan(p, w)->num_parameters();
  BM_Mlp(st, name, N, w, matched_hidden(P, w), backward);
  st.counters["kan_params"] = static_cast<double>(P);
}

benchmark::internal::Benchmark* common(benchmark::internal::Benchmark* b) {
  return b->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.3);
}

int register_all() {
  std::vector<KanPoint> points;
  for (const std::string& basis : nn::basis_names()) {
    const std::string knob = size_knob(basis);
    if (knob.empty()) {
      points.push_back({basis, knob, 0, ""});
      continue;
    }
    for (int G : kGrids) {
      KanPoint p{basis, knob, G, ""};
      try {
        make_kan(p, 4);
      } catch (const std::exception&) {
        continue;  // a size this basis does not accept
      }
      points.push_back(p);
    }
  }
  for (bool bwd : {false, true}) {
    const std::string mode = bwd ? "fwdbwd" : "fwd";
    for (int64_t N : kRows)
      for (int64_t w : kWidths) {
        // fmt::format rather than operator+ chains: GCC 12 warns falsely (-Wrestrict, bug 105329) on those.
        const std::string shape = fmt::format("/N:{}/w:{}", N, w);
        const std::string lin = fmt::format("Linear/{}{}", mode, shape), mlp = fmt::format("MLP_io/{}{}", mode, shape);
        common(benchmark::RegisterBenchmark(lin.c_str(), BM_Linear, lin, N, w, bwd));
        common(benchmark::RegisterBenchmark(mlp.c_str(), BM_Mlp, mlp, N, w, w, bwd));
        for (const KanPoint& p : points) {
          const std::string suffix = fmt::format("/{}/{}{}/G:{}", p.label(), mode, shape, p.g_label());
          const std::string kan = fmt::format("KAN{}", suffix), mlp_p = fmt::format("MLP_params{}", suffix);
          common(benchmark::RegisterBenchmark(kan.c_str(), BM_Kan, kan, p, N, w, bwd));
          common(benchmark::RegisterBenchmark(mlp_p.c_str(), BM_MlpParams, mlp_p, p, N, w, bwd));
        }
      }
  }
  // Both B-spline paths forced, for the crossover that sets kernels::kLocalPathMinBases:
  // KAN/bspline_{dense,local}/{fwd,fwdbwd}/N:4096/w:256/G:{5,10,20,50}.
  for (bool bwd : {false, true})
    for (const char* path : {"dense", "local"})
      for (int G : {5, 10, 20, 50}) {
        const KanPoint p{"bspline", "grid_size", G, path};
        const std::string kan = fmt::format("KAN/{}/{}/N:4096/w:256/G:{}", p.label(), bwd ? "fwdbwd" : "fwd", p.g_label());
        common(benchmark::RegisterBenchmark(kan.c_str(), BM_Kan, kan, p, int64_t{4096}, int64_t{256}, bwd));
      }
  return 0;
}

// Registered at start-up (knot_bench's main is BENCHMARK_MAIN in bench_core.cpp). The basis
// registry loads the built-ins on first use, so this does not depend on initialisation order.
const int kRegistered = register_all();

}  // namespace
