// Finite-difference gradient check (see gradcheck.h).
#include "autograd/gradcheck.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "core/rng.h"
#include "core/strided.h"

namespace knot {
namespace {

// L = Σ w·y, on the host.
double weighted_sum(const Tensor& y, const std::vector<double>& w) {
  const std::vector<double> v = y.to_vector<double>();
  double s = 0;
  for (size_t i = 0; i < v.size(); ++i) s += v[i] * w[i];
  return s;
}

std::vector<int64_t> element_offsets(const Tensor& t) {
  std::vector<int64_t> offs;
  for_each_offset(t.shape(), t.strides(), t.offset(), [&](int64_t o) { offs.push_back(o); });
  return offs;
}

}  // namespace

std::string gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs, const GradcheckOptions& opt) {
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    KNOT_CHECK(x.dtype() == DType::f64 && x.is_leaf() && x.is_cpu(),
               "gradcheck: input {} must be a f64 CPU leaf, got {}", k, x.desc());
  }

  // Analytic gradients.
  for (const auto& x : inputs)
    if (x.defined()) x.zero_grad();
  Tensor y = f(inputs);
  KNOT_CHECK(y.dtype() == DType::f64, "gradcheck: the function must return f64, got {}", y.desc());
  Generator gen(opt.seed);
  const Tensor w = randn(y.shape(), DType::f64, &gen);
  const std::vector<double> wv = w.to_vector<double>();
  if (!y.requires_grad()) return "gradcheck: the output does not require grad";
  y.backward(w);

  auto eval = [&]() {
    NoGradGuard ng;
    return weighted_sum(f(inputs), wv);
  };

  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    const Tensor gt = x.grad();
    const std::vector<double> g = gt.defined() ? gt.to_vector<double>() : std::vector<double>(x.numel(), 0.0);
    double* base = static_cast<double*>(x.storage()->data);
    const std::vector<int64_t> offs = element_offsets(x);

    if (x.numel() <= opt.max_full) {
      for (size_t i = 0; i < offs.size(); ++i) {
        const double orig = base[offs[i]];
        base[offs[i]] = orig + opt.eps;
        const double lp = eval();
        base[offs[i]] = orig - opt.eps;
        const double lm = eval();
        base[offs[i]] = orig;
        const double num = (lp - lm) / (2 * opt.eps);
        if (!(std::abs(num - g[i]) <= opt.atol + opt.rtol * std::abs(num)))
          return fmt::format("gradcheck: input {} {} element {}: analytic {:.10g} vs numeric {:.10g}", k,
                             shape_str(x.shape()), i, g[i], num);
      }
    } else {
      for (int d = 0; d < opt.directions; ++d) {
        std::vector<double> v = randn({x.numel()}, DType::f64, &gen).to_vector<double>();
        double norm = 0;
        for (double a : v) norm += a * a;
        norm = std::sqrt(norm);
        for (double& a : v) a /= norm;
        std::vector<double> orig(offs.size());
        for (size_t i = 0; i < offs.size(); ++i) orig[i] = base[offs[i]];
        for (size_t i = 0; i < offs.size(); ++i) base[offs[i]] = orig[i] + opt.eps * v[i];
        const double lp = eval();
        for (size_t i = 0; i < offs.size(); ++i) base[offs[i]] = orig[i] - opt.eps * v[i];
        const double lm = eval();
        for (size_t i = 0; i < offs.size(); ++i) base[offs[i]] = orig[i];
        const double num = (lp - lm) / (2 * opt.eps);
        double ana = 0;
        for (size_t i = 0; i < offs.size(); ++i) ana += g[i] * v[i];
        if (!(std::abs(num - ana) <= opt.atol + opt.rtol * std::abs(num)))
          return fmt::format("gradcheck: input {} {} direction {}: analytic {:.10g} vs numeric {:.10g}", k,
                             shape_str(x.shape()), d, ana, num);
      }
    }
  }
  return "";
}

}  // namespace knot
