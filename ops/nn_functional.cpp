// Fused nn ops with hand-written backward: softmax, log_softmax, layer_norm, cross_entropy; and
// mse_loss, which is built from primitives (its backward is two elementwise ops anyway).
// dropout and embedding live in ops/embedding_dropout.cpp.
#include "ops/nn_functional.h"

#include <algorithm>
#include <cmath>

#include "kernels/elementwise.h"
#include "kernels/loss.h"
#include "kernels/norm.h"
#include "kernels/reduce.h"
#include "kernels/softmax.h"
#include "ops/ops.h"

namespace knot {
namespace {

Tensor softmax_op(const Tensor& x_in, int64_t dim, bool log_space) {
  const char* op = log_space ? "log_softmax" : "softmax";
  KNOT_CHECK(is_floating(x_in.dtype()), "{}: expected a float tensor, got {}", op, x_in.desc());
  // A 0-dim tensor is a row of one.
  const Tensor x = x_in.dim() == 0 ? reshape(x_in, {1}) : x_in;
  const int d = wrap_dim(dim, x.dim(), op);
  Tensor y = kernels::softmax_fwd(x, d, log_space);
  if (needs_grad({x})) {
    // Backward needs only the output (detached: saving y itself would make a cycle y -> node -> y).
    SavedTensor sy(y.detach());
    attach_grad(y, op, {x}, [sy, d, log_space, op](const Tensor& g) {
      return std::vector<Tensor>{kernels::softmax_bwd(sy.get(op), g, d, log_space)};
    });
  }
  return x_in.dim() == 0 ? reshape(y, {}) : y;
}

void check_operand(const char* op, const char* what, const Tensor& x, const Tensor& t) {
  KNOT_CHECK(t.dtype() == x.dtype(), "{}: {} is {} but x is {}", op, what, t.desc(), x.desc());
  KNOT_CHECK(t.device() == x.device(), "{}: {} is {} but x is {}", op, what, t.desc(), x.desc());
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_op(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_op(x, dim, true); }

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, const Shape& normalized_shape) {
  KNOT_CHECK(is_floating(x.dtype()), "layer_norm: expected a float tensor, got {}", x.desc());
  const Shape ns = weight.defined() ? weight.shape() : normalized_shape;
  KNOT_CHECK(!ns.empty(), "layer_norm: no weight and no normalized_shape, so no dims to normalise over (x is {})",
             shape_str(x.shape()));
  KNOT_CHECK(normalized_shape.empty() || normalized_shape == ns,
             "layer_norm: normalized_shape {} differs from the weight's shape {}", shape_str(normalized_shape),
             shape_str(ns));
  const size_t k = ns.size();
  KNOT_CHECK(static_cast<size_t>(x.dim()) >= k && Shape(x.shape().end() - k, x.shape().end()) == ns,
             "layer_norm: normalized shape {} does not match the trailing dims of x {}", shape_str(ns),
             shape_str(x.shape()));
  if (weight.defined()) check_operand("layer_norm", "weight", x, weight);
  if (bias.defined()) {
    check_operand("layer_norm", "bias", x, bias);
    KNOT_CHECK(bias.shape() == ns, "layer_norm: bias shape {} differs from the normalized shape {}",
               shape_str(bias.shape()), shape_str(ns));
  }
  const int64_t n = shape_numel(ns);
  KNOT_CHECK(n > 0, "layer_norm: normalized shape {} has no elements", shape_str(ns));
  KNOT_CHECK(eps >= 0, "layer_norm: eps must be >= 0, got {}", eps);

  kernels::LayerNormFwd f = kernels::layer_norm_fwd(x, weight, bias, n, eps);
  if (needs_grad({x, weight, bias})) {
    const bool gx = x.requires_grad(), gw = weight.defined() && weight.requires_grad(),
               gb = bias.defined() && bias.requires_grad();
    // Only x, weight and the per-row mean/rstd: x̂ is recomputed in backward.
    SavedTensor sx(x), sw(weight), smean(f.mean), srstd(f.rstd);
    attach_grad(f.y, "layer_norm", {x, weight, bias}, [=](const Tensor& g) {
      const char* op = "layer_norm";
      kernels::LayerNormBwd b =
          kernels::layer_norm_bwd(g, sx.get(op), sw.get(op), smean.get(op), srstd.get(op), n, gx, gw, gb);
      return std::vector<Tensor>{b.dx, gw ? reshape(b.dweight, ns) : Tensor(), gb ? reshape(b.dbias, ns) : Tensor()};
    });
  }
  return f.y;
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index, double label_smoothing,
                     Reduction reduction) {
  KNOT_CHECK(is_floating(logits.dtype()), "cross_entropy: logits must be float, got {}", logits.desc());
  KNOT_CHECK(logits.dim() >= 1, "cross_entropy: logits must have a class dim, got shape {}", shape_str(logits.shape()));
  KNOT_CHECK(target.dtype() == DType::i32 || target.dtype() == DType::i64,
             "cross_entropy: target must be i32 or i64 class indices, got {}", target.desc());
  const int64_t classes = logits.shape().back();
  const Shape lead(logits.shape().begin(), logits.shape().end() - 1);
  KNOT_CHECK(classes > 0, "cross_entropy: logits {} have no classes", shape_str(logits.shape()));
  KNOT_CHECK(target.shape() == lead, "cross_entropy: target shape {} does not match logits {} (expected {})",
             shape_str(target.shape()), shape_str(logits.shape()), shape_str(lead));
  KNOT_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0,
             "cross_entropy: label_smoothing must be in [0, 1], got {}", label_smoothing);

  kernels::CrossEntropyFwd f = kernels::cross_entropy_fwd(logits, target, classes, ignore_index, label_smoothing);
  const int64_t rows = f.loss.numel(), count = f.count;
  Tensor out;
  if (reduction == Reduction::none) {
    out = reshape(f.loss, lead);
  } else {
    out = reshape(kernels::sum(f.loss, {0}), {});
    // No counted target gives 0/0 = NaN under mean, as in PyTorch.
    if (reduction == Reduction::mean) kernels::scale(out, 1.0 / static_cast<double>(count));
  }
  if (needs_grad({logits})) {
    SavedTensor sx(logits), st(target), slse(f.lse);
    attach_grad(out, "cross_entropy", {logits}, [=](const Tensor& g) {
      const char* op = "cross_entropy";
      Tensor row_grad;  // (rows): dL/dloss_r
      if (reduction == Reduction::none) row_grad = reshape(g, {rows});
      else if (reduction == Reduction::sum) row_grad = expand(reshape(g, {1}), {rows});
      else row_grad = expand(reshape(mul(g, 1.0 / static_cast<double>(count)), {1}), {rows});
      return std::vector<Tensor>{kernels::cross_entropy_bwd(sx.get(op), st.get(op), slse.get(op), row_grad, classes,
                                                            ignore_index, label_smoothing)};
    });
  }
  return out;
}

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  KNOT_CHECK(is_floating(input.dtype()), "mse_loss: expected a float input, got {}", input.desc());
  KNOT_CHECK(input.shape() == target.shape(), "mse_loss: input shape {} differs from target shape {}",
             shape_str(input.shape()), shape_str(target.shape()));
  KNOT_CHECK(input.dtype() == target.dtype(), "mse_loss: input is {} but target is {}", input.desc(), target.desc());
  const Tensor d = sub(input, target);
  const Tensor sq = mul(d, d);
  if (reduction == Reduction::none) return sq;
  return reduction == Reduction::sum ? sum(sq) : mean(sq);
}

Tensor bce_with_logits(const Tensor& logits, const Tensor& labels, const Tensor& weights) {
  KNOT_CHECK(logits.shape() == labels.shape() && logits.shape() == weights.shape(),
             "bce_with_logits: logits {}, labels {} and weights {} must have one shape", shape_str(logits.shape()),
             shape_str(labels.shape()), shape_str(weights.shape()));
  KNOT_CHECK(is_floating(logits.dtype()), "bce_with_logits: expected float logits, got {}", logits.desc());
  // softplus(x) − y·x = −[y·log σ(x) + (1 − y)·log(1 − σ(x))], without overflow for large |x|.
  const double n = std::max(sum(weights).item(), 1.0);
  return mul(sum(mul(weights, sub(softplus(logits), mul(labels, logits)))), 1.0 / n);
}

Tensor rotary_embedding(const Tensor& x, int64_t offset, double base) {
  KNOT_CHECK(x.dim() >= 2, "rotary_embedding: x must be (..., T, D), got {}", shape_str(x.shape()));
  const int64_t T = x.size(-2), D = x.size(-1), half = D / 2;
  KNOT_CHECK(D % 2 == 0 && D > 0, "rotary_embedding: the last dim (the head size) must be even and positive, got {}", D);
  KNOT_CHECK(offset >= 0, "rotary_embedding: offset must be >= 0, got {}", offset);
  KNOT_CHECK(base > 1.0 && std::isfinite(base), "rotary_embedding: base must be a finite number > 1, got {}", base);
  std::vector<double> c(static_cast<size_t>(T * half)), s(c.size());
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(offset + t) * std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(D));
      c[t * half + i] = std::cos(angle);
      s[t * half + i] = std::sin(angle);
    }
  const Tensor cos_t = from_vector(c, {T, half}).to(x.dtype()).to(x.device());
  const Tensor sin_t = from_vector(s, {T, half}).to(x.dtype()).to(x.device());
  const Tensor x1 = slice(x, -1, 0, half), x2 = slice(x, -1, half, D);
  return cat({sub(mul(x1, cos_t), mul(x2, sin_t)), add(mul(x2, cos_t), mul(x1, sin_t))}, x.dim() - 1);
}

}  // namespace knot
