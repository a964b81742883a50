// Basic transformer layers: LayerNorm, Embedding, Dropout, positional encodings, padding masks,
// and ProjectionSpec (a projection kind + options, the config value that picks Linear or KAN).
//
//   LayerNorm      x: (..., D) -> (..., D)     y = (x − mean) / sqrt(var + eps) · weight + bias
//   Embedding      ids: (...) i32/i64 -> (..., D); weight (V, D) ~ N(0, 1), row padding_idx = 0
//                  and never trained (PyTorch nn.Embedding)
//   Dropout        identity in eval mode; counter-based mask in training (ops dropout)
//   sinusoidal PE  PE[pos, 2i] = sin(pos / 10000^(2i/d)),  PE[pos, 2i+1] = cos(pos / 10000^(2i/d))
//                  (Vaswani et al. 2017, §3.5); a cached table, not a parameter and not in the
//                  state_dict (kanformer keeps it as a plain attribute, so it is not counted)
// Parameter names: LayerNorm "weight", "bias"; Embedding "weight" (PyTorch).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/rng.h"
#include "nn/module.h"
#include "nn/projection.h"

namespace knot::nn {

class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t dim, double eps = 1e-5, bool affine = true, DType dtype = DType::f32);
  std::string type_name() const override { return "LayerNorm"; }
  Tensor forward(const Tensor& x) const;  // x: (..., dim)
  std::string to_graph(ExportGraph& g, const std::string& x, const std::string& prefix) const;

  Tensor weight;  // (dim), ones
  Tensor bias;    // (dim), zeros
  double eps;

 private:
  int64_t dim_;
};

class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t dim, int64_t padding_idx = -1, DType dtype = DType::f32);
  std::string type_name() const override { return "Embedding"; }
  Tensor forward(const Tensor& ids) const;  // ids: (...) -> (..., dim)
  std::string to_graph(ExportGraph& g, const std::string& ids, const std::string& prefix) const;
  int64_t num_embeddings() const { return num_; }
  int64_t dim() const { return dim_; }

  Tensor weight;  // (num_embeddings, dim)
  int64_t padding_idx;

 private:
  int64_t num_, dim_;
};

class Dropout : public Module {
 public:
  explicit Dropout(double p, Generator* gen = nullptr);
  std::string type_name() const override { return "Dropout"; }
  Tensor forward(const Tensor& x) const;  // any shape
  double p() const { return p_; }
  // The rate to pass to fused ops that drop internally: p while training, 0 in eval mode.
  double active_p() const { return is_training() ? p_ : 0.0; }
  Generator* generator() const { return gen_; }

 private:
  double p_;
  Generator* gen_;
};

// PE rows [offset, offset + length) of a d-dim sinusoidal table: (length, dim).
Tensor sinusoidal_positional_encoding(int64_t length, int64_t dim, int64_t offset = 0, DType dtype = DType::f32,
                                      Device device = Device::cpu());

// Adds PE to (B, T, dim) inputs at positions [offset, offset + T); errors past max_length. The
// table is built once per dtype/device and kept outside the state_dict.
class SinusoidalPositionalEncoding : public Module {
 public:
  SinusoidalPositionalEncoding(int64_t dim, int64_t max_length);
  std::string type_name() const override { return "SinusoidalPositionalEncoding"; }
  Tensor forward(const Tensor& x, int64_t offset = 0) const;  // x: (B, T, dim) -> (B, T, dim)
  int64_t max_length() const { return max_length_; }
  int64_t dim() const { return dim_; }

 private:
  int64_t dim_, max_length_;
  mutable Tensor table_;  // (max_length, dim), built lazily
};

// Position ids [offset, offset + T) as an i64 (1, T) tensor (for learned position embeddings).
Tensor position_ids(int64_t T, int64_t offset = 0, Device device = Device::cpu());
// ids: (B, S) -> i32 (B, S) with 1 where ids == pad_idx (the key_padding_mask of attention);
// undefined when pad_idx < 0 (no padding token).
Tensor padding_mask(const Tensor& ids, int64_t pad_idx);

// Which projection a layer builds: "mlp" (Linear) or "kan_<basis>" with the basis options.
// Bias flags apply to Linear only: KAN projections have no bias (as in the reference projects).
struct ProjectionSpec {
  std::string kind = "mlp";
  nlohmann::json options = nlohmann::json::object();
  bool is_kan() const { return kind.rfind("kan", 0) == 0; }
  std::shared_ptr<Projection> make(int64_t in, int64_t out, bool bias) const;
  nlohmann::json to_json() const { return {{"kind", kind}, {"options", options}}; }
};

}  // namespace knot::nn
