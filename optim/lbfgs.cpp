// L-BFGS (see lbfgs.h).
#include "optim/lbfgs.h"

#include <cmath>
#include <numeric>

#include "autograd/grad_mode.h"
#include "ops/ops.h"

namespace knot::optim {
namespace {
double dot(const std::vector<double>& a, const std::vector<double>& b) {
  return std::inner_product(a.begin(), a.end(), b.begin(), 0.0);
}
}  // namespace

LBFGS::LBFGS(std::vector<Tensor> params, LBFGSOptions opt) : params_(std::move(params)), opt_(opt) {
  KNOT_CHECK(!params_.empty(), "LBFGS: no parameters to optimise");
  KNOT_CHECK(opt_.history > 0 && opt_.max_iter > 0, "LBFGS: history and max_iter must be positive");
  for (const auto& p : params_)
    KNOT_CHECK(p.is_leaf() && p.requires_grad() && p.is_cpu(), "LBFGS: parameters must be CPU leaves requiring grad, got {}",
               p.desc());
}

std::vector<double> LBFGS::flat_grad() const {
  std::vector<double> g;
  for (const auto& p : params_) {
    const Tensor gt = p.grad();
    if (gt.defined()) {
      const auto v = gt.to_vector<double>();
      g.insert(g.end(), v.begin(), v.end());
    } else {
      g.insert(g.end(), static_cast<size_t>(p.numel()), 0.0);
    }
  }
  return g;
}

std::vector<double> LBFGS::flat_params() const {
  std::vector<double> x;
  for (const auto& p : params_) {
    const auto v = p.to_vector<double>();
    x.insert(x.end(), v.begin(), v.end());
  }
  return x;
}

void LBFGS::set_params(const std::vector<double>& x) {
  NoGradGuard ng;
  size_t off = 0;
  for (const auto& p : params_) {
    const size_t n = static_cast<size_t>(p.numel());
    std::vector<double> v(x.begin() + static_cast<std::ptrdiff_t>(off), x.begin() + static_cast<std::ptrdiff_t>(off + n));
    p.copy_(from_vector(v, p.shape()));
    off += n;
  }
}

double LBFGS::step(const std::function<double()>& closure) {
  double loss = closure();
  ++evals_;
  const double first_loss = loss;
  std::vector<double> g = flat_grad();
  std::vector<double> x = flat_params();
  for (int it = 0; it < opt_.max_iter; ++it) {
    double gmax = 0;
    for (double v : g) gmax = std::max(gmax, std::abs(v));
    if (gmax <= opt_.tolerance_grad) break;

    // Two-loop recursion: d = -H·g.
    std::vector<double> q = g;
    std::vector<double> alpha(s_.size());
    for (int i = static_cast<int>(s_.size()) - 1; i >= 0; --i) {
      alpha[i] = rho_[i] * dot(s_[i], q);
      for (size_t j = 0; j < q.size(); ++j) q[j] -= alpha[i] * y_[i][j];
    }
    double gamma = 1.0;
    if (!s_.empty()) gamma = dot(s_.back(), y_.back()) / dot(y_.back(), y_.back());
    else gamma = std::min(1.0, 1.0 / std::max(1e-12, std::sqrt(dot(g, g))));  // first step: bounded length
    for (double& v : q) v *= gamma;
    for (size_t i = 0; i < s_.size(); ++i) {
      const double beta = rho_[i] * dot(y_[i], q);
      for (size_t j = 0; j < q.size(); ++j) q[j] += s_[i][j] * (alpha[i] - beta);
    }
    std::vector<double> d(q.size());
    for (size_t j = 0; j < q.size(); ++j) d[j] = -q[j];
    double gd = dot(g, d);
    if (gd >= 0) {  // not a descent direction (curvature went bad): restart along -g
      s_.clear(); y_.clear(); rho_.clear();
      for (size_t j = 0; j < d.size(); ++j) d[j] = -g[j];
      gd = -dot(g, g);
    }

    // Backtracking line search: Armijo condition f(x + t·d) <= f(x) + c·t·gᵀd.
    double t = opt_.lr;
    std::vector<double> xn(x.size());
    double new_loss = loss;
    bool accepted = false;
    for (int ls = 0; ls < opt_.max_line_search; ++ls) {
      for (size_t j = 0; j < x.size(); ++j) xn[j] = x[j] + t * d[j];
      set_params(xn);
      new_loss = closure();
      ++evals_;
      if (std::isfinite(new_loss) && new_loss <= loss + 1e-4 * t * gd) { accepted = true; break; }
      t *= 0.5;
    }
    if (!accepted) {  // no progress possible along d: keep the old point
      set_params(x);
      closure();
      ++evals_;
      break;
    }
    std::vector<double> gn = flat_grad();
    std::vector<double> s(x.size()), y(x.size());
    for (size_t j = 0; j < x.size(); ++j) {
      s[j] = xn[j] - x[j];
      y[j] = gn[j] - g[j];
    }
    const double ys = dot(y, s);
    if (ys > 1e-10) {
      s_.push_back(std::move(s));
      y_.push_back(std::move(y));
      rho_.push_back(1.0 / ys);
      if (static_cast<int>(s_.size()) > opt_.history) { s_.pop_front(); y_.pop_front(); rho_.pop_front(); }
    }
    const double change = std::abs(new_loss - loss);
    x = std::move(xn);
    g = std::move(gn);
    loss = new_loss;
    if (change < opt_.tolerance_change) break;
  }
  return first_loss;
}

}  // namespace knot::optim
