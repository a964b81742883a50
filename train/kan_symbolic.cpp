// `knot symbolic` (see kan_symbolic.h).
#include "train/kan_symbolic.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "data/csv.h"
#include "data/jsonl.h"
#include "models/config.h"
#include "nn/kan.h"
#include "ops/ops.h"
#include "optim/lbfgs.h"
#include "train/kan_record.h"

namespace knot::train {
namespace {
namespace fs = std::filesystem;
using Json = nlohmann::json;

// ---- the function library ----------------------------------------------------------------------

struct SymFn {
  const char* name;
  int complexity;  // what a formula pays for using it (the edge choice below)
  double (*f)(double);
  bool (*ok)(double);           // the domain: f(u) is used only where ok(u)
  Tensor (*op)(const Tensor&);  // the same function as a differentiable op (for tuning)
};

bool any(double) { return true; }
const SymFn kLibrary[] = {
    {"x", 1, [](double u) { return u; }, any, [](const Tensor& t) { return t; }},
    {"x^2", 2, [](double u) { return u * u; }, any, [](const Tensor& t) { return mul(t, t); }},
    {"x^3", 3, [](double u) { return u * u * u; }, any, [](const Tensor& t) { return mul(mul(t, t), t); }},
    {"1/x", 2, [](double u) { return 1.0 / u; }, [](double u) { return std::abs(u) > 1e-3; },
     [](const Tensor& t) { return rdiv(1.0, t); }},
    {"sqrt", 2, [](double u) { return std::sqrt(u); }, [](double u) { return u >= 0; },
     [](const Tensor& t) { return sqrt(t); }},
    {"exp", 2, [](double u) { return std::exp(u); }, [](double u) { return u < 50; },
     [](const Tensor& t) { return exp(t); }},
    {"log", 2, [](double u) { return std::log(u); }, [](double u) { return u > 1e-6; },
     [](const Tensor& t) { return log(t); }},
    {"sin", 2, [](double u) { return std::sin(u); }, any, [](const Tensor& t) { return sin(t); }},
    {"cos", 2, [](double u) { return std::cos(u); }, any, [](const Tensor& t) { return cos(t); }},
    {"tanh", 3, [](double u) { return std::tanh(u); }, any, [](const Tensor& t) { return tanh(t); }},
    {"sigmoid", 3, [](double u) { return 1.0 / (1.0 + std::exp(-u)); }, any, [](const Tensor& t) { return sigmoid(t); }},
    {"abs", 3, [](double u) { return std::abs(u); }, any, [](const Tensor& t) { return abs(t); }},
    {"0", 0, [](double) { return 0.0; }, any, [](const Tensor& t) { return mul(t, 0.0); }},
};

const SymFn& library_fn(const std::string& name) {
  for (const SymFn& f : kLibrary)
    if (name == f.name) return f;
  std::vector<std::string> names;
  for (const SymFn& f : kLibrary) names.emplace_back(f.name);
  KNOT_FAIL("symbolic: unknown function '{}' (the library: {})", name, fmt::join(names, ", "));
}

// ---- fitting one edge ----------------------------------------------------------------------------

struct Fit {
  double r2 = -1, c = 0, a = 1, b = 0, d = 0;
};

// The best c·f(a·u + b) + d for y over (a, b) as described in kan_symbolic.h.
Fit fit_edge(const SymFn& fn, const std::vector<double>& u, const std::vector<double>& y) {
  const double N = static_cast<double>(u.size());
  double sy = 0, syy = 0;
  for (double v : y) sy += v;
  for (double v : y) syy += (v - sy / N) * (v - sy / N);
  Fit best;
  if (std::string(fn.name) == "0" || syy <= 0) {
    best.r2 = std::string(fn.name) == "0" ? 0.0 : -1.0;
    best.c = 0;
    best.d = sy / N;
    if (syy <= 0) best.r2 = std::string(fn.name) == "0" ? 1.0 : -1.0;  // a constant edge is exactly "0"
    return best;
  }
  const double my = sy / N;
  std::vector<double> z(u.size());
  auto score = [&](double a, double b) {
    double zmin = INFINITY, zmax = -INFINITY, zmean = 0;
    for (size_t n = 0; n < u.size(); ++n) {
      const double arg = a * u[n] + b;
      if (!fn.ok(arg)) return;
      z[n] = fn.f(arg);
      if (!std::isfinite(z[n])) return;
      zmin = std::min(zmin, z[n]);
      zmax = std::max(zmax, z[n]);
      zmean += z[n];
    }
    // f(a·u + b) must vary over the data by more than rounding would: a nearly constant one (cos of a
    // tiny argument) scaled by a huge c fits anything smooth, and says nothing.
    if (!(zmax - zmin > 1e-4 * std::max({std::abs(zmin), std::abs(zmax), 1e-300}))) return;
    zmean /= N;
    double var = 0, cov = 0;  // centred sums (two passes: no cancellation)
    for (size_t n = 0; n < u.size(); ++n) {
      var += (z[n] - zmean) * (z[n] - zmean);
      cov += (z[n] - zmean) * (y[n] - my);
    }
    const double r2 = std::min(1.0, cov * cov / (var * syy));
    if (r2 > best.r2) {
      best.r2 = r2;
      best.c = cov / var;
      best.d = my - best.c * zmean;
      best.a = a;
      best.b = b;
    }
  };
  if (std::string(fn.name) == "x") {
    score(1.0, 0.0);
    return best;
  }
  for (int i = 0; i <= 40; ++i)
    for (int j = 0; j <= 40; ++j) score(-10.0 + 0.5 * i, -10.0 + 0.5 * j);
  double step = 0.5;
  for (int round = 0; round < 4 && best.r2 >= 0; ++round) {
    const double a0 = best.a, b0 = best.b;
    step /= 5;
    for (int i = -12; i <= 12; ++i)
      for (int j = -12; j <= 12; ++j) score(a0 + step * i, b0 + step * j);
  }
  return best;
}

// ---- the formula -----------------------------------------------------------------------------------

struct Sum;
struct Term {
  double coef = 1;
  std::string fn;             // "var" (an input), a library function, or "phi[...]" (a numeric edge)
  int var = -1;               // with "var"
  std::shared_ptr<Sum> arg;   // otherwise
};
struct Sum {
  double k = 0;
  std::vector<Term> terms;
};

Sum scaled(const Sum& s, double f) {
  Sum r = s;
  r.k *= f;
  for (Term& t : r.terms) t.coef *= f;
  return r;
}

void add_into(Sum& to, const Sum& s) {
  to.k += s.k;
  for (const Term& t : s.terms) to.terms.push_back(t);
}

std::string num(double v) { return fmt::format("{:.4g}", v); }

// A constant or coefficient below this fraction of the largest one beside it is left out of the printed
// formula (and of the foldings that need a zero constant): the formula shows 4 significant digits, and
// tuning leaves such remainders (sin(3.142*x1 + 8.6e-09)). The RMSEs use the exact constants.
constexpr double kNegligible = 1e-6;

std::string print_sum(const Sum& s, const std::vector<std::string>& vars);

// "coef*body", with a coefficient that prints as 1 or −1 (4 significant digits) left out.
std::string with_coef(double coef, const std::string& body) {
  const std::string c = num(coef);
  if (c == "1") return body;
  if (c == "-1") return "-" + body;
  return c + "*" + body;
}

bool is_single_var(const Sum& s) {
  return s.terms.size() == 1 && s.terms[0].fn == "var" && std::abs(s.k) == 0 && std::abs(s.terms[0].coef - 1) < 1e-12;
}

std::string print_term(const Term& t, const std::vector<std::string>& vars) {
  if (t.fn == "var") return with_coef(t.coef, vars[static_cast<size_t>(t.var)]);
  const std::string inner = print_sum(*t.arg, vars);
  if (t.fn == "x^2" || t.fn == "x^3") {
    const std::string p = t.fn.substr(1);
    return with_coef(t.coef, is_single_var(*t.arg) ? inner + p : "(" + inner + ")" + p);
  }
  if (t.fn == "1/x") return num(t.coef) + "/" + (is_single_var(*t.arg) ? inner : "(" + inner + ")");
  return with_coef(t.coef, t.fn + "(" + inner + ")");
}

std::string print_sum(const Sum& s, const std::vector<std::string>& vars) {
  double scale = std::abs(s.k);
  for (const Term& t : s.terms) scale = std::max(scale, std::abs(t.coef));
  std::string out;
  for (const Term& t : s.terms) {
    if (std::abs(t.coef) <= kNegligible * scale) continue;
    std::string p = print_term(t, vars);
    if (out.empty()) {
      out = p;
    } else if (p[0] == '-') {
      out += " - " + p.substr(1);
    } else {
      out += " + " + p;
    }
  }
  if (std::abs(s.k) > kNegligible * std::max(scale, 1e-300) || out.empty()) {
    if (out.empty()) return num(s.k);
    out += s.k < 0 ? " - " + num(-s.k) : " + " + num(s.k);
  }
  return out;
}

// The term of an edge c·f(a·u + b) + d applied to the input node u, added into `to`, with the exact
// foldings of kan_symbolic.h.
void add_edge(Sum& to, const SymbolicEdge& e, const Sum& u) {
  if (!e.replaced) {
    Term t;
    t.coef = 1;
    t.fn = fmt::format("phi[{}.{}.{}]", e.layer, e.in, e.out);
    t.arg = std::make_shared<Sum>(u);
    to.terms.push_back(t);
    return;
  }
  to.k += e.d;
  if (e.function == "0") return;
  Sum inner = scaled(u, e.a);
  inner.k += e.b;
  if (e.function == "x") {
    add_into(to, scaled(inner, e.c));
    return;
  }
  Term t;
  t.coef = e.c;
  t.fn = e.function;
  if (e.function == "exp") {  // c·exp(v + k) = (c·e^k)·exp(v)
    t.coef *= std::exp(inner.k);
    inner.k = 0;
  }
  // A single term g·v inside (no constant, as print_sum would show it):
  const bool lone = inner.terms.size() == 1 && std::abs(inner.k) <= kNegligible * std::abs(inner.terms[0].coef);
  if (lone && (e.function == "x^2" || e.function == "x^3" || e.function == "1/x")) {  // (g·v)^p = g^p·v^p
    const double g = inner.terms[0].coef;
    t.coef *= e.function == "x^2" ? g * g : e.function == "x^3" ? g * g * g : 1.0 / g;
    inner.terms[0].coef = 1;
    inner.k = 0;
  } else if (lone && inner.terms[0].coef < 0 && (e.function == "sin" || e.function == "tanh")) {  // odd: f(−v) = −f(v)
    t.coef = -t.coef;
    inner.terms[0].coef = -inner.terms[0].coef;
    inner.k = 0;
  } else if (lone && inner.terms[0].coef < 0 && (e.function == "cos" || e.function == "abs")) {  // even
    inner.terms[0].coef = -inner.terms[0].coef;
    inner.k = 0;
  }
  t.arg = std::make_shared<Sum>(inner);
  to.terms.push_back(t);
}

// ---- evaluating and tuning the symbolic network ------------------------------------------------------

struct Layer {
  std::string name;
  nn::KANLayer* layer;
  int64_t in, out;
  std::vector<double> bias;  // (out) or empty
};

// Edge index within `edges` for (layer l, out o, in i).
size_t edge_at(const std::vector<size_t>& first, const std::vector<Layer>& L, size_t l, int64_t o, int64_t i) {
  return first[l] + static_cast<size_t>(o * L[l].in + i);
}

// The symbolic network on x (N, in0), f64 on the host; numeric edges through their layer's edge_values.
std::vector<double> eval_network(const std::vector<Layer>& L, const std::vector<size_t>& first,
                                 const std::vector<SymbolicEdge>& edges, const Tensor& x) {
  const int64_t N = x.size(0);
  std::vector<double> h = x.to(DType::f64).contiguous().to_vector<double>();
  for (size_t l = 0; l < L.size(); ++l) {
    const int64_t in = L[l].in, out = L[l].out;
    std::vector<double> numeric;
    bool any_numeric = false;
    for (int64_t k = 0; k < in * out; ++k) any_numeric = any_numeric || !edges[first[l] + k].replaced;
    if (any_numeric) numeric = L[l].layer->edge_values(from_vector(h, {N, in})).contiguous().to_vector<double>();
    std::vector<const SymFn*> fn(static_cast<size_t>(in * out), nullptr);  // per edge, looked up once
    for (int64_t k = 0; k < in * out; ++k)
      if (edges[first[l] + k].replaced) fn[k] = &library_fn(edges[first[l] + k].function);
    std::vector<double> next(static_cast<size_t>(N * out), 0.0);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t o = 0; o < out; ++o) {
        double s = L[l].bias.empty() ? 0.0 : L[l].bias[o];
        for (int64_t i = 0; i < in; ++i) {
          const SymbolicEdge& e = edges[edge_at(first, L, l, o, i)];
          if (!e.replaced) {
            s += numeric[(n * out + o) * in + i];
            continue;
          }
          s += e.c * fn[static_cast<size_t>(o * in + i)]->f(e.a * h[n * in + i] + e.b) + e.d;
        }
        next[n * out + o] = s;
      }
    h.swap(next);
  }
  return h;
}

double rmse(const std::vector<double>& p, const Tensor& y) {
  const std::vector<double> t = y.to(DType::f64).contiguous().to_vector<double>();
  double se = 0;
  for (size_t n = 0; n < t.size(); ++n) se += (p[n] - t[n]) * (p[n] - t[n]);
  return std::sqrt(se / static_cast<double>(std::max<size_t>(1, t.size())));
}

// The constants (c, a, b, d) of each edge as a (4) tensor that L-BFGS trains.
std::vector<Tensor> constant_params(const std::vector<SymbolicEdge>& edges, size_t count) {
  std::vector<Tensor> params;
  for (size_t k = 0; k < count; ++k) {
    const SymbolicEdge& e = edges[k];
    Tensor p = from_vector(std::vector<double>{e.c, e.a, e.b, e.d}, {4});
    p.requires_grad_(true);
    params.push_back(p);
  }
  return params;
}

void store_constants(const std::vector<Tensor>& params, std::vector<SymbolicEdge>& edges) {
  for (size_t k = 0; k < params.size(); ++k) {
    const std::vector<double> v = params[k].detach().to_vector<double>();
    edges[k].c = v[0];
    edges[k].a = v[1];
    edges[k].b = v[2];
    edges[k].d = v[3];
  }
}

// The first `layers` layers (every edge replaced) on X (N, in0) as a graph in `params`: one (N) tensor
// per node of the last of them.
std::vector<Tensor> symbolic_forward(const std::vector<Layer>& L, const std::vector<size_t>& first,
                                     const std::vector<SymbolicEdge>& edges, const std::vector<Tensor>& params,
                                     const Tensor& X, size_t layers) {
  const int64_t N = X.size(0);
  std::vector<Tensor> h;
  for (int64_t i = 0; i < L[0].in; ++i) h.push_back(select(X, 1, i));
  for (size_t l = 0; l < layers; ++l) {
    std::vector<Tensor> next;
    for (int64_t o = 0; o < L[l].out; ++o) {
      Tensor s = full({N}, L[l].bias.empty() ? 0.0 : L[l].bias[o], DType::f64);
      for (int64_t i = 0; i < L[l].in; ++i) {
        const size_t k = edge_at(first, L, l, o, i);
        const Tensor& p = params[k];
        const Tensor c = slice(p, 0, 0, 1), a = slice(p, 0, 1, 2), b = slice(p, 0, 2, 3), d = slice(p, 0, 3, 4);
        const Tensor f = library_fn(edges[k].function).op(add(mul(h[static_cast<size_t>(i)], a), b));
        s = add(s, add(mul(f, c), d));
      }
      next.push_back(s);
    }
    h.swap(next);
  }
  return h;
}

// L-BFGS on the training rows' MSE over `params` (each a leaf); stops early on a non-finite loss.
void lbfgs_mse(const std::vector<Tensor>& params, const std::function<Tensor()>& prediction, const Tensor& Y,
                 int64_t steps) {
  optim::LBFGSOptions o;
  o.lr = 1.0;
  optim::LBFGS opt(params, o);
  for (int64_t s = 0; s < steps; ++s) {
    const double v = opt.step([&]() {
      for (const Tensor& p : params) p.zero_grad();
      const Tensor diff = sub(prediction(), Y);
      const Tensor l = mean(mul(diff, diff));
      l.backward();
      return l.item();
    });
    if (!std::isfinite(v)) break;
  }
}

// L-BFGS on the constants of every edge (all replaced) against the training rows' MSE.
void tune(const std::vector<Layer>& L, const std::vector<size_t>& first, std::vector<SymbolicEdge>& edges,
          const Tensor& x, const Tensor& y, int64_t steps) {
  std::vector<Tensor> params = constant_params(edges, edges.size());
  const Tensor X = x.to(DType::f64).contiguous(), Y = y.to(DType::f64).reshape({x.size(0)});
  lbfgs_mse(params, [&]() { return symbolic_forward(L, first, edges, params, X, L.size())[0]; }, Y, steps);
  store_constants(params, edges);
}

// The staged fit (kan_symbolic.h, refit_steps): layers [0, L.size()) are symbolic, every edge replaced;
// their constants and the parameters of the KAN layers `rest` after them are trained together on the
// training rows, so the later layers' splines adapt to the formulas before they are fitted in turn.
void refit_after(const std::vector<Layer>& L, const std::vector<size_t>& first, std::vector<SymbolicEdge>& edges,
                 const std::vector<nn::KANLayer*>& rest, const Tensor& x, const Tensor& y, int64_t steps) {
  const size_t count = first.back() + static_cast<size_t>(L.back().in * L.back().out);
  std::vector<Tensor> params = constant_params(edges, count);
  std::vector<Tensor> trained = params;
  for (nn::KANLayer* k : rest)
    for (const Tensor& p : k->parameters())
      if (p.requires_grad()) trained.push_back(p);
  const DType dt = rest.front()->parameters().empty() ? DType::f64 : rest.front()->parameters().front().dtype();
  const Tensor X = x.to(DType::f64).contiguous(), Y = y.to(DType::f64).reshape({x.size(0)});
  lbfgs_mse(
      trained,
      [&]() {
        Tensor H = stack(symbolic_forward(L, first, edges, params, X, L.size()), 1).to(dt);
        for (nn::KANLayer* k : rest) H = k->forward(H);
        return reshape(H, {X.size(0)}).to(DType::f64);
      },
      Y, steps);
  store_constants(params, edges);
}

// The network with layers [0, L.size()) symbolic and the KAN layers `rest` after them, on x: (N) f64.
std::vector<double> mixed_output(const std::vector<Layer>& L, const std::vector<size_t>& first,
                                 const std::vector<SymbolicEdge>& edges, const std::vector<nn::KANLayer*>& rest,
                                 const Tensor& x) {
  NoGradGuard ng;
  const DType dt = rest.front()->parameters().empty() ? DType::f64 : rest.front()->parameters().front().dtype();
  const std::vector<double> h = eval_network(L, first, edges, x);
  Tensor H = from_vector(h, {x.size(0), L.back().out}).to(dt);
  for (nn::KANLayer* k : rest) H = k->forward(H);
  return H.to(DType::f64).contiguous().to_vector<double>();
}

}  // namespace

SymbolicResult run_symbolic(const SymbolicOptions& opt, const std::function<void(const std::string&)>& log) {
  KNOT_CHECK(opt.r2_threshold >= 0 && opt.r2_threshold <= 1, "symbolic: --r2 must be in [0, 1], got {}",
             opt.r2_threshold);
  KNOT_CHECK(opt.rows >= 2, "symbolic: --rows must be >= 2, got {}", opt.rows);
  KNOT_CHECK(opt.refit_steps >= 0, "symbolic: --refit-steps must be >= 0, got {}", opt.refit_steps);
  KNOT_CHECK(opt.simplicity > 1 && std::isfinite(opt.simplicity), "symbolic: --simplicity must be > 1, got {}",
             opt.simplicity);
  std::vector<const SymFn*> lib;
  for (const auto& n : opt.library) lib.push_back(&library_fn(n));
  if (lib.empty())
    for (const SymFn& f : kLibrary) lib.push_back(&f);
  // --fix layer.i.o=f, checked before any work.
  std::map<std::string, std::string> fixes;
  for (const auto& f : opt.fix) {
    const auto eq = f.find('=');
    KNOT_CHECK(eq != std::string::npos && eq > 0, "symbolic: --fix '{}' should read LAYER.IN.OUT=FUNCTION, e.g. layers.0.1.0=sin",
               f);
    library_fn(f.substr(eq + 1));
    fixes[f.substr(0, eq)] = f.substr(eq + 1);
  }

  RecordedFit run = record_fit_run(opt.run_dir, opt.rows, "symbolic", log);
  const Json& cfg = run.config;
  auto& recorded = run.layers;

  // Training and test rows for the RMSEs, the staged refits and the tuning.
  const auto& dj = cfg.at("data");
  const auto inputs = dj.at("inputs").get<std::vector<std::string>>();
  const std::string target = dj.at("target").get<std::string>();
  auto table = [&](const std::string& generated, const std::string& key) -> data::CsvTable {
    const fs::path g = fs::path(opt.run_dir) / generated;
    const std::string p = fs::exists(g) ? g.string() : dj.value(key, std::string());
    return p.empty() ? data::CsvTable() : data::read_csv(p);
  };
  const data::CsvTable train_t = table("train.csv", "train"), test_t = table("test.csv", "test");
  Tensor xtr = train_t.select(inputs, DType::f64), ytr = train_t.select({target}, DType::f64);
  xtr = slice(xtr, 0, 0, std::min<int64_t>(xtr.size(0), opt.rows)).contiguous();
  ytr = slice(ytr, 0, 0, xtr.size(0)).contiguous();
  std::vector<Layer> L;
  std::vector<size_t> first;
  SymbolicResult res;
  Tensor x0;
  bool staged = false;  // a refit has changed the network: later layers read the symbolic layers' output
  for (size_t li = 0; li < recorded.size(); ++li) {
    auto& [name, layer] = recorded[li];
    Tensor x = recorded_rows(*layer, name, opt.rows);  // (turns the layer's capturing off)
    if (staged) x = from_vector(eval_network(L, first, res.edges, xtr), {xtr.size(0), layer->in_features()});
    if (L.empty()) x0 = x;
    Layer ly{name, layer, layer->in_features(), layer->out_features(), {}};
    for (const auto& [pn, p] : layer->named_parameters(false))
      if (pn == "bias") ly.bias = p.detach().to(DType::f64).contiguous().to_vector<double>();
    first.push_back(res.edges.size());
    // φ of every edge on the recorded rows, then the fits.
    const int64_t N = x.size(0), in = ly.in, out = ly.out;
    const std::vector<double> xv = x.to_vector<double>();
    std::vector<double> phi(static_cast<size_t>(N * out * in));
    for_each_edge_chunk(*layer, x, [&](int64_t r0, const Tensor& e) {
      const std::vector<double> v = e.to_vector<double>();
      std::copy(v.begin(), v.end(), phi.begin() + r0 * out * in);
    });
    std::vector<double> imp(static_cast<size_t>(out * in), 0.0);  // mean |φ| per edge, as inspect's
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < out * in; ++k) imp[k] += std::abs(phi[n * out * in + k]) / static_cast<double>(N);
    const double top = *std::max_element(imp.begin(), imp.end());
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i) {
        SymbolicEdge e;
        e.layer = name;
        e.in = i;
        e.out = o;
        std::vector<double> u(static_cast<size_t>(N)), y(static_cast<size_t>(N));
        for (int64_t n = 0; n < N; ++n) {
          u[n] = xv[n * in + i];
          y[n] = phi[(n * out + o) * in + i];
        }
        const std::string key = fmt::format("{}.{}.{}", name, i, o);
        std::vector<const SymFn*> cands = lib;
        const auto layer_fix = fixes.find(name);  // --fix LAYER=f: every edge of the layer
        if (fixes.count(key) || layer_fix != fixes.end()) {
          cands = {&library_fn(fixes.count(key) ? fixes[key] : layer_fix->second)};
          e.fixed = true;
          fixes.erase(key);
        } else if (imp[o * in + i] < opt.dead_fraction * top || imp[o * in + i] == 0.0) {
          cands = {&library_fn("0")};
        }
        std::vector<Fit> fits;
        for (const SymFn* f : cands) fits.push_back(fit_edge(*f, u, y));
        // The choice (kan_symbolic.h): score = complexity + log2(1 − R² + 1e-5) / log2(simplicity); the
        // first function in library order (simplest first) within half a unit of the lowest score.
        // "0" competes only on a dead edge (its R² is 0 however large the edge is).
        std::vector<double> score(cands.size(), INFINITY);
        double lowest = INFINITY;
        for (size_t c = 0; c < cands.size(); ++c) {
          if (fits[c].r2 < 0) continue;  // left the domain everywhere
          if (cands.size() > 1 && std::string(cands[c]->name) == "0") continue;
          score[c] = cands[c]->complexity +
                     std::log2(std::max(1.0 - fits[c].r2, 0.0) + 1e-5) / std::log2(opt.simplicity);
          lowest = std::min(lowest, score[c]);
        }
        for (size_t c = 0; c < cands.size(); ++c)
          if (score[c] <= lowest + 0.5) {
            e.function = cands[c]->name;
            e.r2 = fits[c].r2;
            e.c = fits[c].c;
            e.a = fits[c].a;
            e.b = fits[c].b;
            e.d = fits[c].d;
            break;
          }
        const bool dead = cands.size() == 1 && std::string(cands[0]->name) == "0" && !e.fixed;
        e.replaced = e.fixed || dead || e.r2 >= opt.r2_threshold;
        if (e.function.empty()) {  // no candidate fitted (every (a, b) left the domain)
          e.function = "none";
          e.replaced = false;
        }
        res.numeric_edges += !e.replaced;
        log(fmt::format("symbolic: {} in {} -> out {}: {} (R² {:.6f}){}", name, i, o, e.function, e.r2,
                        e.replaced ? (e.fixed ? ", fixed" : (dead ? ", dead edge" : ", replaced"))
                                   : ", kept as a spline"));
        res.edges.push_back(e);
      }
    fixes.erase(name);  // a whole-layer --fix is used up
    L.push_back(ly);
    // The staged fit: with every edge of this layer replaced, train its constants (and those before)
    // together with the later layers' splines, then fit the next layer to what it has become.
    if (opt.refit_steps > 0 && li + 1 < recorded.size() &&
        std::all_of(res.edges.begin(), res.edges.end(), [](const SymbolicEdge& e) { return e.replaced; })) {
      std::vector<nn::KANLayer*> rest;
      for (size_t r = li + 1; r < recorded.size(); ++r) rest.push_back(recorded[r].second);
      const double before = rmse(mixed_output(L, first, res.edges, rest, xtr), ytr);
      const std::vector<SymbolicEdge> edges_before = res.edges;
      std::vector<Tensor> params_before;  // the later layers' parameters, to put back if the refit does worse
      for (nn::KANLayer* k : rest)
        for (const Tensor& p : k->parameters()) params_before.push_back(p.detach().clone());
      refit_after(L, first, res.edges, rest, xtr, ytr, opt.refit_steps);
      const double after = rmse(mixed_output(L, first, res.edges, rest, xtr), ytr);
      const bool better = std::isfinite(after) && after <= before;
      if (!better) {
        res.edges = edges_before;
        NoGradGuard ng;
        size_t j = 0;
        for (nn::KANLayer* k : rest)
          for (const Tensor& p : k->parameters()) p.copy_(params_before[j++]);
      }
      log(fmt::format("symbolic: {} symbolic, the layers after it refitted (L-BFGS, {} steps): train RMSE {:.4e} -> "
                      "{:.4e}{}",
                      name, opt.refit_steps, before, after, better ? "" : "; worse, so the layers are left as they were"));
      staged = true;  // the later layers read the symbolic layers' output from here on, refitted or not
    }
  }
  KNOT_CHECK(fixes.empty(), "symbolic: --fix names an edge or layer the model does not have: {} (edges read "
             "LAYER.IN.OUT, e.g. layers.0.1.0; a whole layer LAYER, e.g. layers.0)", fixes.begin()->first);

  res.train_rmse_before_tuning = rmse(eval_network(L, first, res.edges, xtr), ytr);
  if (opt.tune && res.numeric_edges == 0) {
    std::vector<SymbolicEdge> tuned = res.edges;
    tune(L, first, tuned, xtr, ytr, opt.tune_steps);
    const double after = rmse(eval_network(L, first, tuned, xtr), ytr);
    if (std::isfinite(after) && after <= res.train_rmse_before_tuning) {
      res.edges = tuned;
      res.tuned = true;
    }
    log(fmt::format("symbolic: tuning the constants (L-BFGS, {} steps): train RMSE {:.4e} -> {:.4e}{}", opt.tune_steps,
                    res.train_rmse_before_tuning, after, res.tuned ? "" : "; kept the untuned constants"));
  } else if (opt.tune) {
    log(fmt::format("symbolic: {} edge{} stay numeric (R² below {}); the constants are not tuned", res.numeric_edges,
                    res.numeric_edges == 1 ? "" : "s", opt.r2_threshold));
  }
  res.train_rmse = rmse(eval_network(L, first, res.edges, xtr), ytr);
  if (!test_t.rows.empty())
    res.test_rmse = rmse(eval_network(L, first, res.edges, test_t.select(inputs, DType::f64)),
                         test_t.select({target}, DType::f64));

  // The formula: each layer's node sums substituted into the next.
  std::vector<Sum> nodes;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Sum s;
    Term t;
    t.fn = "var";
    t.var = static_cast<int>(i);
    s.terms.push_back(t);
    nodes.push_back(s);
  }
  for (size_t l = 0; l < L.size(); ++l) {
    std::vector<Sum> next(static_cast<size_t>(L[l].out));
    for (int64_t o = 0; o < L[l].out; ++o) {
      if (!L[l].bias.empty()) next[o].k += L[l].bias[o];
      for (int64_t i = 0; i < L[l].in; ++i) add_edge(next[o], res.edges[edge_at(first, L, l, o, i)], nodes[i]);
    }
    nodes.swap(next);
  }
  for (size_t o = 0; o < nodes.size(); ++o) {
    const std::string f = print_sum(nodes[o], inputs);
    res.formulas.push_back(nodes.size() == 1 ? target + " = " + f : fmt::format("{}[{}] = {}", target, o, f));
    log(fmt::format("symbolic: {}", res.formulas.back()));
  }
  log(fmt::format("symbolic: train RMSE {:.4e}{}{}", res.train_rmse,
                  res.test_rmse >= 0 ? fmt::format(", test RMSE {:.4e}", res.test_rmse) : std::string(),
                  res.numeric_edges ? fmt::format(" ({} numeric edge{} included)", res.numeric_edges,
                                                  res.numeric_edges == 1 ? "" : "s")
                                    : std::string()));

  if (!opt.out_dir.empty()) {
    fs::create_directories(opt.out_dir);
    Json j{{"run", opt.run_dir},     {"r2_threshold", opt.r2_threshold}, {"tuned", res.tuned},
           {"formulas", res.formulas}, {"train_rmse", res.train_rmse},   {"edges", Json::array()}};
    if (res.test_rmse >= 0) j["test_rmse"] = res.test_rmse;
    for (const SymbolicEdge& e : res.edges)
      j["edges"].push_back({{"layer", e.layer}, {"in", e.in}, {"out", e.out}, {"function", e.function},
                            {"c", e.c}, {"a", e.a}, {"b", e.b}, {"d", e.d}, {"r2", e.r2}, {"replaced", e.replaced},
                            {"fixed", e.fixed}});
    data::write_file_atomic((fs::path(opt.out_dir) / "symbolic.json").string(), j.dump(1) + "\n");
    std::string txt;
    for (const auto& f : res.formulas) txt += f + "\n";
    data::write_file_atomic((fs::path(opt.out_dir) / "formula.txt").string(), txt);
  }
  return res;
}

}  // namespace knot::train
