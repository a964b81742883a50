// dropout, relu_dropout and embedding (declared in ops/nn_functional.h). dropout keeps only
// (seed, draw) for backward and regenerates the mask; relu_dropout also its output; embedding keeps
// only the ids.
#include "kernels/dropout.h"
#include "kernels/elementwise.h"
#include "kernels/embedding.h"
#include "ops/ops.h"

namespace knot {

Tensor dropout(const Tensor& x, double p, bool train, Generator* gen) {
  KNOT_CHECK(p >= 0.0 && p < 1.0, "dropout: p must be in [0, 1), got {}", p);
  KNOT_CHECK(is_floating(x.dtype()), "dropout: expected a float tensor, got {}", x.desc());
  // Identity without consuming a draw, so evaluation does not shift the training masks.
  if (!train || p == 0.0) return x;
  Generator& g = gen ? *gen : default_generator();
  const uint64_t seed = g.seed(), draw = g.next_draw(), offset = batch_element_offset(x);
  Tensor y = kernels::dropout_fwd(x, p, seed, draw, offset);
  return attach_grad(y, "dropout", {x}, [p, seed, draw, offset](const Tensor& gy) {
    return std::vector<Tensor>{kernels::dropout_bwd(gy, p, seed, draw, offset)};
  });
}

Tensor relu_dropout(const Tensor& x, double p, bool train, Generator* gen) {
  KNOT_CHECK(p >= 0.0 && p < 1.0, "relu_dropout: p must be in [0, 1), got {}", p);
  KNOT_CHECK(is_floating(x.dtype()), "relu_dropout: expected a float tensor, got {}", x.desc());
  if (!train || p == 0.0) return relu(x);
  Generator& g = gen ? *gen : default_generator();
  const uint64_t seed = g.seed(), draw = g.next_draw();
  Tensor y = kernels::dropout_fwd(kernels::unary(UnaryOp::relu, x, 0, 0), p, seed, draw, batch_element_offset(x));
  if (!needs_grad({x})) return y;
  SavedTensor sy(y.detach());
  const double keep_scale = 1.0 / (1.0 - p);
  return attach_grad(y, "relu_dropout", {x}, [keep_scale, sy](const Tensor& gy) {
    // relu's derivative at y instead of x (y > 0 <=> x > 0 and kept), so the mask needs no Philox
    // draw: g * 1 or g * 0, then dropout's scale in place, (g * 1) * s -- the two-op form's
    // (g * s) * 1 (dropped elements may come out as -0 instead of +0; equal, and no sum can tell).
    // One pass and one (N, hidden) temporary less than relu's and dropout's backward in turn.
    Tensor gx = kernels::unary_bwd(UnaryOp::relu, sy.get("relu_dropout"), Tensor(), gy, 0, 0);
    kernels::scale(gx, keep_scale);
    return std::vector<Tensor>{gx};
  });
}

Tensor embedding(const Tensor& ids, const Tensor& weight, int64_t padding_idx) {
  KNOT_CHECK(weight.dim() == 2, "embedding: weight must be (V, D), got shape {}", shape_str(weight.shape()));
  KNOT_CHECK(is_integral(ids.dtype()), "embedding: ids must be i32 or i64, got {} {}", dtype_name(ids.dtype()),
             shape_str(ids.shape()));
  KNOT_CHECK(is_floating(weight.dtype()), "embedding: weight must be a float tensor, got {}", weight.desc());
  const int64_t V = weight.shape()[0];
  KNOT_CHECK(padding_idx < V, "embedding: padding_idx {} is out of range for a table of V={} rows", padding_idx, V);
  KNOT_CHECK(ids.dim() + 1 <= kMaxDims, "embedding: ids of shape {} would give an output of more than {} dims",
             shape_str(ids.shape()), kMaxDims);
  Tensor out = kernels::embedding_fwd(ids, weight);
  if (!needs_grad({weight})) return out;
  SavedTensor saved(ids);
  return attach_grad(out, "embedding", {weight}, [saved, V, padding_idx](const Tensor& g) {
    return std::vector<Tensor>{kernels::embedding_bwd(g, saved.get("embedding"), V, padding_idx)};
  });
}

}  // namespace knot
