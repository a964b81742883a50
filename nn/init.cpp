// Parameter initialisers (see init.h).
#include "nn/init.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "ops/ops.h"

namespace knot::nn::init {

std::pair<int64_t, int64_t> fans(const Tensor& w) {
  KNOT_CHECK(w.dim() >= 1, "init: cannot compute fans of a 0-dim tensor");
  if (w.dim() == 1) return {w.size(0), w.size(0)};
  int64_t receptive = 1;
  for (int64_t d = 2; d < w.dim(); ++d) receptive *= w.size(d);
  return {w.size(1) * receptive, w.size(0) * receptive};
}

void uniform_(const Tensor& t, double lo, double hi, Generator* gen) {
  NoGradGuard ng;
  t.copy_(rand(t.shape(), t.dtype(), gen, lo, hi).to(t.device()));
}

void normal_(const Tensor& t, double mean, double std, Generator* gen) {
  NoGradGuard ng;
  t.copy_(randn(t.shape(), t.dtype(), gen, mean, std).to(t.device()));
}

void trunc_normal_(const Tensor& t, double mean, double std, double lo, double hi, Generator* gen) {
  KNOT_CHECK(lo < hi, "trunc_normal_: empty interval [{}, {}]", lo, hi);
  NoGradGuard ng;
  // Redraw the out-of-range values until none are left (expected few rounds for sane bounds).
  std::vector<double> v = randn(t.shape(), DType::f64, gen, mean, std).to_vector<double>();
  for (int round = 0; round < 1000; ++round) {
    bool redo = false;
    std::vector<double> fresh = randn({static_cast<int64_t>(v.size())}, DType::f64, gen, mean, std).to_vector<double>();
    for (size_t i = 0; i < v.size(); ++i)
      if (v[i] < lo || v[i] > hi) { v[i] = fresh[i]; redo = true; }
    if (!redo) break;
  }
  for (double& x : v) x = std::clamp(x, lo, hi);
  t.copy_(from_vector(v, t.shape()).to(t.dtype()).to(t.device()));
}

void kaiming_uniform_(const Tensor& w, double a, Generator* gen) {
  const double gain = std::sqrt(2.0 / (1.0 + a * a));
  const double bound = gain * std::sqrt(3.0 / static_cast<double>(std::max<int64_t>(fans(w).first, 1)));
  uniform_(w, -bound, bound, gen);
}

void xavier_uniform_(const Tensor& w, double gain, Generator* gen) {
  const auto [fi, fo] = fans(w);
  const double bound = gain * std::sqrt(6.0 / static_cast<double>(std::max<int64_t>(fi + fo, 1)));
  uniform_(w, -bound, bound, gen);
}

}  // namespace knot::nn::init
