// Parameter initialisers (in place, under no-grad), matching PyTorch's torch.nn.init formulas
// so that layers start from the same distributions as the reference projects.
#pragma once

#include "core/rng.h"
#include "core/tensor.h"

namespace knot::nn::init {

// fan_in/fan_out of a weight (out, in, ...): fan_in = in·receptive, fan_out = out·receptive.
std::pair<int64_t, int64_t> fans(const Tensor& w);
// U(-b, b) with b = gain·sqrt(3/fan_in), gain = sqrt(2/(1+a²)) (PyTorch kaiming_uniform_, fan_in mode).
void kaiming_uniform_(const Tensor& w, double a = 0.0, Generator* gen = nullptr);
void uniform_(const Tensor& t, double lo, double hi, Generator* gen = nullptr);
void normal_(const Tensor& t, double mean, double std, Generator* gen = nullptr);
// N(mean, std) redrawn outside [lo, hi] (PyTorch trunc_normal_ defaults lo=-2, hi=2 in absolute units).
void trunc_normal_(const Tensor& t, double mean, double std, double lo = -2.0, double hi = 2.0, Generator* gen = nullptr);
// U(-b, b) with b = gain·sqrt(6/(fan_in+fan_out)).
void xavier_uniform_(const Tensor& w, double gain = 1.0, Generator* gen = nullptr);

}  // namespace knot::nn::init
