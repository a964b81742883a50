// Basic transformer layers (see layers.h).
#include "nn/layers.h"

#include <cmath>
#include <vector>

#include "autograd/grad_mode.h"
#include "nn/export_graph.h"
#include "nn/init.h"
#include "ops/ops.h"

namespace knot::nn {

LayerNorm::LayerNorm(int64_t dim, double eps_, bool affine, DType dtype) : eps(eps_), dim_(dim) {
  KNOT_CHECK(dim > 0, "LayerNorm: dim must be positive, got {}", dim);
  KNOT_CHECK(eps_ >= 0, "LayerNorm: eps must be >= 0, got {}", eps_);
  if (affine) {
    weight = register_parameter("weight", ones({dim}, dtype));
    bias = register_parameter("bias", zeros({dim}, dtype));
  }
}

Tensor LayerNorm::forward(const Tensor& x) const {
  KNOT_CHECK(x.dim() >= 1 && x.size(-1) == dim_, "LayerNorm: input {} does not end in dim {}", shape_str(x.shape()),
             dim_);
  return layer_norm(x, weight, bias, eps, {dim_});
}

Embedding::Embedding(int64_t num_embeddings, int64_t dim, int64_t padding_idx_, DType dtype)
    : padding_idx(padding_idx_), num_(num_embeddings), dim_(dim) {
  KNOT_CHECK(num_embeddings > 0 && dim > 0, "Embedding: sizes must be positive, got num={} dim={}", num_embeddings,
             dim);
  KNOT_CHECK(padding_idx_ < num_embeddings, "Embedding: padding_idx {} out of range for {} rows", padding_idx_,
             num_embeddings);
  weight = register_parameter("weight", empty({num_embeddings, dim}, dtype));
  init::normal_(weight, 0.0, 1.0);
  if (padding_idx >= 0) {
    NoGradGuard ng;
    weight.select(0, padding_idx).zero_();
  }
}

Tensor Embedding::forward(const Tensor& ids) const { return embedding(ids, weight, padding_idx); }

std::string Embedding::to_graph(ExportGraph& g, const std::string& ids, const std::string& prefix) const {
  return g.op("Gather", {g.weight(prefix + "weight", weight), ids}, {{"axis", int64_t{0}}});
}

std::string LayerNorm::to_graph(ExportGraph& g, const std::string& x, const std::string& prefix) const {
  // Without affine parameters the scale is ones and the shift zeros (LayerNormalization needs a scale).
  const std::string w = weight.defined() ? g.weight(prefix + "weight", weight) : g.constant(prefix + "ones", ones({dim_}));
  const std::string b = bias.defined() ? g.weight(prefix + "bias", bias) : g.constant(prefix + "zeros", zeros({dim_}));
  return g.op("LayerNormalization", {x, w, b}, {{"axis", int64_t{-1}}, {"epsilon", eps}});
}

Dropout::Dropout(double p, Generator* gen) : p_(p), gen_(gen) {
  KNOT_CHECK(p >= 0.0 && p < 1.0, "Dropout: p must be in [0, 1), got {}", p);
}

Tensor Dropout::forward(const Tensor& x) const { return dropout(x, p_, is_training(), gen_); }

Tensor sinusoidal_positional_encoding(int64_t length, int64_t dim, int64_t offset, DType dtype, Device device) {
  KNOT_CHECK(length >= 0 && dim > 0 && offset >= 0,
             "sinusoidal_positional_encoding: bad sizes length={} dim={} offset={}", length, dim, offset);
  std::vector<double> pe(static_cast<size_t>(length * dim));
  for (int64_t i = 0; i < dim; i += 2) {
    const double inv_freq = 1.0 / std::pow(10000.0, static_cast<double>(i) / static_cast<double>(dim));
    for (int64_t t = 0; t < length; ++t) {
      const double angle = static_cast<double>(t + offset) * inv_freq;
      pe[t * dim + i] = std::sin(angle);
      if (i + 1 < dim) pe[t * dim + i + 1] = std::cos(angle);
    }
  }
  return from_vector(pe, {length, dim}).to(dtype).to(device);
}

SinusoidalPositionalEncoding::SinusoidalPositionalEncoding(int64_t dim, int64_t max_length)
    : dim_(dim), max_length_(max_length) {
  KNOT_CHECK(dim > 0 && max_length > 0, "SinusoidalPositionalEncoding: bad sizes dim={} max_length={}", dim,
             max_length);
}

Tensor SinusoidalPositionalEncoding::forward(const Tensor& x, int64_t offset) const {
  KNOT_CHECK(x.dim() == 3 && x.size(2) == dim_, "SinusoidalPositionalEncoding: input must be (B, T, {}), got {}", dim_,
             shape_str(x.shape()));
  const int64_t T = x.size(1);
  KNOT_CHECK(offset >= 0 && offset + T <= max_length_,
             "SinusoidalPositionalEncoding: positions [{}, {}) exceed max_length {}", offset, offset + T, max_length_);
  if (!table_.defined() || table_.dtype() != x.dtype() || table_.device() != x.device())
    table_ = sinusoidal_positional_encoding(max_length_, dim_, 0, x.dtype(), x.device());
  return add(x, table_.slice(0, offset, offset + T));
}

Tensor position_ids(int64_t T, int64_t offset, Device device) {
  std::vector<int64_t> ids(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) ids[t] = offset + t;
  return from_vector(ids, {1, T}).to(device);
}

Tensor padding_mask(const Tensor& ids, int64_t pad_idx) {
  if (pad_idx < 0) return Tensor();
  KNOT_CHECK(is_integral(ids.dtype()), "padding_mask: ids must be i32 or i64, got {}", ids.desc());
  const std::vector<int64_t> v = ids.to_vector<int64_t>();
  std::vector<int32_t> m(v.size());
  for (size_t i = 0; i < v.size(); ++i) m[i] = v[i] == pad_idx ? 1 : 0;
  return from_vector(m, ids.shape()).to(ids.device());
}

std::shared_ptr<Projection> ProjectionSpec::make(int64_t in, int64_t out, bool bias) const {
  return make_projection(kind, in, out, bias && !is_kan(), options);
}

}  // namespace knot::nn
