// scaled_dot_product_attention (fused, kernels/attention.h) and its composite reference sdpa_ref.
#include "ops/attention.h"

#include <cmath>
#include <vector>

#include "kernels/attention.h"
#include "ops/ops.h"

namespace knot {
namespace {

constexpr const char* kOp = "scaled_dot_product_attention";

// Broadcast (stride-0) views are read through strided maps elsewhere, but a 0 stride is not a
// layout a GEMM should see: materialise those, leave transposed/strided views alone.
Tensor gemm_ready(const Tensor& x) {
  for (int64_t d = 0; d < x.dim(); ++d)
    if (x.stride(d) == 0 && x.size(d) > 1) return x.contiguous();
  return x;
}

struct Dims {
  int64_t B, H, T, S, Dk, Dv;
};

Dims check_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& opt) {
  KNOT_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4,
             "{}: q, k, v must be (B, H, T, Dk), (B, H, S, Dk), (B, H, S, Dv); got q {} k {} v {}", kOp,
             shape_str(q.shape()), shape_str(k.shape()), shape_str(v.shape()));
  KNOT_CHECK(is_floating(q.dtype()) && q.dtype() == k.dtype() && q.dtype() == v.dtype(),
             "{}: q, k, v must share one float dtype; got q {} k {} v {}", kOp, q.desc(), k.desc(), v.desc());
  KNOT_CHECK(q.device() == k.device() && q.device() == v.device(),
             "{}: q, k, v are on different devices: q {} k {} v {}", kOp, q.desc(), k.desc(), v.desc());
  const Dims d{q.size(0), q.size(1), q.size(2), k.size(2), q.size(3), v.size(3)};
  KNOT_CHECK(k.size(0) == d.B && v.size(0) == d.B && k.size(1) == d.H && v.size(1) == d.H,
             "{}: batch and head dims differ: q {} k {} v {}", kOp, shape_str(q.shape()), shape_str(k.shape()),
             shape_str(v.shape()));
  KNOT_CHECK(k.size(3) == d.Dk, "{}: q and k head widths differ: q {} k {}", kOp, shape_str(q.shape()),
             shape_str(k.shape()));
  KNOT_CHECK(v.size(2) == d.S, "{}: k and v have different key counts: k {} v {}", kOp, shape_str(k.shape()),
             shape_str(v.shape()));
  const Tensor& m = opt.key_padding_mask;
  if (m.defined()) {
    KNOT_CHECK(m.dim() == 2 && m.size(0) == d.B && m.size(1) == d.S,
               "{}: key_padding_mask must be (B, S) = ({}, {}), got {} (k is {})", kOp, d.B, d.S, shape_str(m.shape()),
               shape_str(k.shape()));
    KNOT_CHECK(m.device() == q.device(), "{}: key_padding_mask is {} but q is {}", kOp, m.desc(), q.desc());
  }
  KNOT_CHECK(opt.dropout_p >= 0.0 && opt.dropout_p < 1.0, "{}: dropout_p must be in [0, 1), got {}", kOp,
             opt.dropout_p);
  KNOT_CHECK(std::isfinite(opt.scale), "{}: scale must be finite, got {}", kOp, opt.scale);
  return d;
}

double resolve_scale(const AttentionOptions& opt, int64_t Dk) {
  return opt.scale != 0.0 ? opt.scale : 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(Dk, 1)));
}

}  // namespace

Tensor attention_mask(const AttentionOptions& opt, int64_t B, int64_t T, int64_t S, DType dtype, Device device) {
  std::vector<double> pad;
  if (opt.key_padding_mask.defined()) pad = opt.key_padding_mask.to_vector<double>();
  std::vector<double> m(static_cast<size_t>(B * T * S), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t s = 0; s < S; ++s) {
        const bool masked = (!pad.empty() && pad[b * S + s] != 0.0) || (opt.causal && s > t + (S - T));
        m[(b * T + t) * S + s] = masked ? 1.0 : 0.0;
      }
  return from_vector(m, {B, 1, T, S}).to(dtype).to(device);
}

Tensor scaled_dot_product_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                                    const AttentionOptions& opt) {
  const Dims d = check_inputs(q_in, k_in, v_in, opt);
  const Tensor q = gemm_ready(q_in), k = gemm_ready(k_in), v = gemm_ready(v_in);
  const Tensor mask = opt.key_padding_mask;
  kernels::AttentionParams p;
  p.causal = opt.causal;
  p.scale = resolve_scale(opt, d.Dk);
  p.dropout_p = opt.dropout_p;
  if (p.dropout_p > 0.0) {
    Generator& g = opt.gen ? *opt.gen : default_generator();
    p.seed = g.seed();
    p.draw = g.next_draw();
    p.dropout_offset = batch_element_offset(d.B * d.H * d.T * d.S, {d.B, d.H, d.T, d.S});  // the (B, H, T, S) weights
  }
  kernels::AttentionFwd f = kernels::attention_fwd(q, k, v, mask, p);
  if (!needs_grad({q_in, k_in, v_in})) return f.out;
  // Only the inputs, the output and the row logsumexp: P is recomputed in backward.
  SavedTensor sq(q), sk(k), sv(v), so(f.out.detach()), slse(f.lse), smask(mask);
  return attach_grad(f.out, kOp, {q_in, k_in, v_in}, [=](const Tensor& g) {
    kernels::AttentionBwd b = kernels::attention_bwd(gemm_ready(g), sq.get(kOp), sk.get(kOp), sv.get(kOp),
                                                     so.get(kOp), slse.get(kOp), smask.get(kOp), p);
    return std::vector<Tensor>{b.dq, b.dk, b.dv};
  });
}

Tensor sdpa_ref(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& opt) {
  const Dims d = check_inputs(q, k, v, opt);
  const double scale = resolve_scale(opt, d.Dk);
  Tensor scores = mul(matmul(q, k, false, true), scale);  // (B, H, T, S)
  const bool any_mask = opt.key_padding_mask.defined() || opt.causal;
  Tensor probs;
  if (any_mask) {
    const Tensor m = attention_mask(opt, d.B, d.T, d.S, q.dtype(), q.device());  // (B, 1, T, S)
    // A large finite fill, not −inf: an all-masked row then softmaxes to a finite uniform row,
    // which the row factor below zeroes (−inf would give NaN, and NaN · 0 is NaN).
    probs = softmax(masked_fill(scores, m, -1e30), -1);
    std::vector<double> mv = m.to_vector<double>(), keep(static_cast<size_t>(d.B * d.T), 0.0);
    for (int64_t r = 0; r < d.B * d.T; ++r)
      for (int64_t s = 0; s < d.S; ++s)
        if (mv[r * d.S + s] == 0.0) { keep[r] = 1.0; break; }
    probs = mul(probs, from_vector(keep, {d.B, 1, d.T, 1}).to(q.dtype()).to(q.device()));
  } else {
    probs = softmax(scores, -1);
  }
  if (opt.dropout_p > 0.0) probs = dropout(probs, opt.dropout_p, true, opt.gen);
  return matmul(probs, v);
}

}  // namespace knot
