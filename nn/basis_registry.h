// The KAN basis sandbox: the common interface of KAN layers and the registry that makes a basis
// usable by name ("kan_<name>" in configs), by the gradcheck suite (tests/test_kan_bases.cpp loops
// over basis_names()) and by the benchmark sweep (bench loops over basis_names()).
//
// A basis lives in kernels/bases/<name>.h (per-element value and derivative, KNOT_HD) and
// nn/bases/<name>.cpp (its layer: parameters, init, forward), and registers itself with
//   KNOT_REGISTER_BASIS(<name>) { register_basis({"<name>", "summary", factory, test_options}); }
// plus one line KNOT_BASIS(<name>) in nn/bases/builtin.def. Why the list: libknot is a static
// library, and the linker drops an object file nothing refers to, static registrar and all; the
// list makes the registry refer to every built-in basis, without any linker flags. Code outside
// the library (an executable's own .cpp) can simply call register_basis at start-up.
// See docs/adding-a-basis.md.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "core/config.h"
#include "core/dtype.h"
#include "core/rng.h"
#include "kernels/spline.h"
#include "nn/projection.h"

namespace knot::nn {

// A KAN layer: (..., in) -> (..., out).
class KANLayer : public Projection {
 public:
  KANLayer(int64_t in, int64_t out) : in_(in), out_(out) {}
  int64_t in_features() const override { return in_; }
  int64_t out_features() const override { return out_; }
  // The registered basis name ("bspline", "chebyshev", ...).
  virtual std::string basis() const = 0;
  // Adapts a data-dependent grid to the batch x: (..., in). No-op for bases without one.
  virtual void update_grid(const Tensor& x, double margin = 0.01) {}
  // Grid extension (pykan's refine): a new grid of `grid_size` intervals fitted to x, the layer's
  // function kept as closely as the new spline space allows. An error for bases without a grid.
  virtual void refine_grid(const Tensor& x, int64_t grid_size, double margin = 0.01);
  // A scalar sparsity penalty for the loss (train.kan_regularization, fit's lamb). A basis that
  // defines one overrides both; for the others regularization_loss is an error naming the basis
  // (it used to return 0, which made the setting a silent no-op).
  virtual bool has_regularization() const { return false; }
  // Per-edge functions, for looking inside a trained layer (knot inspect): x (N, in) -> (N, out, in),
  // f64 on the CPU, e[n, o, i] = φ_oi(x[n, i]), so that forward(x)[n, o] = Σ_i e[n, o, i] (+ the
  // layer's bias, if it has one). An error naming the basis for bases that do not provide it.
  virtual Tensor edge_values(const Tensor& x) const;
  // The same per-edge functions as a graph in the layer's parameters, with x taken as a constant:
  // (N, in) -> (N, out, in) in the layer's dtype. For pykan's penalty on activations
  // (activation_regularization). An error naming the basis for bases that do not provide it.
  virtual Tensor edge_activations(const Tensor& x) const;
  // pykan's sparsity penalty, on activations, for any basis with edge_activations: over the rows of
  // x (N, in), l1 = mean_n |φ_oi(x_n)| (out, in), then a·Σ l1 + e·entropy(l1 / Σ l1).
  Tensor activation_regularization(const Tensor& x, double a, double e) const;
  // A data-dependent knot grid (in, nk) and its spline order k (the basis is complete on the
  // interior t[k] … t[nk−1−k]); undefined for bases without one.
  virtual Tensor knot_grid(int* order) const { return Tensor(); }
  // Inputs outside the layer's grid: for x (..., in), how many values lie outside the interval where
  // each feature's knot grid is complete ([t[k], t[nk−1−k]] of knot_grid; there the B-splines no
  // longer sum to 1 and fade to 0), and how many values there are: (outside, total). (0, 0) for a
  // basis without a knot grid. The trainer logs the fraction per basis (out_of_grid_<basis>).
  virtual std::pair<int64_t, int64_t> count_outside_grid(const Tensor& x) const;
  // The parameters that carry the scale of the edge functions (every edge's coefficients or mixing
  // weights; not biases, grids, phases or normalisation): scaling each by s scales forward(x) minus
  // its bias by s. Used by the "variance_preserving" initialisation (make_kan_layer). An error naming
  // the basis for bases that do not provide them.
  virtual std::vector<Tensor> edge_scale_parameters() const;
  virtual Tensor regularization_loss(double a = 1.0, double e = 1.0) const;
  // Export (Projection::to_graph): every built-in basis writes its forward as standard ONNX
  // operators; this default is an error naming the basis and the layer.
  std::string to_graph(ExportGraph& g, const std::string& x, const std::string& prefix) const override;

  // Grid updates inside a bigger model (train/trainer.h, `kan_grid_update_every`): the layer's
  // input is not reachable from outside the model, so while capturing is on, forward keeps a
  // detached reference to its last input (no copy, no graph); the trainer then calls
  // update_grid(captured_input()) and switches capturing off, which drops the reference. knot
  // inspect, prune and symbolic record each layer's input the same way. Every basis calls
  // capture_input(x) at the top of its forward (a no-op while capturing is off).
  void set_capture_input(bool on) {
    capture_ = on;
    if (!on) captured_ = Tensor();
  }
  const Tensor& captured_input() const { return captured_; }

 protected:
  // Flattens (..., in) to (N, in), checking the last dim; `op` names the layer in errors.
  Tensor flatten_input(const Tensor& x, const char* op) const;
  void capture_input(const Tensor& x) const {
    if (capture_) captured_ = x.detach();
  }
  int64_t in_, out_;

 private:
  bool capture_ = false;
  mutable Tensor captured_;
};

// Checks a knot grid loaded into a KAN layer, row by row (each row: one input feature's knots along
// the last dim): every value finite, non-decreasing (strictly increasing with `strict`), and the
// row spanning an interval (last > first). Each bad row appends one problem naming `name`, e.g.
// "'layers.0.grid' (2, 12): row 1 decreases at index 4 (0.2 after 0.6); a knot grid must be
// non-decreasing". Bases with a grid call it from check_state (nn::Module).
void check_knot_grid(const Tensor& grid, const std::string& name, bool strict, std::vector<std::string>& problems);

// edge_values for a basis computed by the kan_basis op: x (N, in), W (out, in, nf), e[n, o, i] =
// Σ_f φ_f(x[n, i])·W[o, i, f], with φ from `eval` (f64, on the CPU).
Tensor basis_edge_values(const Tensor& x, const Tensor& W, const kernels::BasisEval& eval);

// edge_activations for a basis computed by the kan_basis op: Φ(x) from `eval` (no graph), times the
// mixing weights W (out, in, nf) as a graph: (N, out, in).
Tensor basis_edge_activations(const Tensor& x, const Tensor& W, const kernels::BasisEval& eval);

// Per-edge sums of basis values times mixing weights: phi (N, in, nf), W (out, in, nf) -> (N, out, in),
// e[n, o, i] = Σ_f phi[n, i, f]·W[o, i, f], a graph in both. One batched GEMM over the inputs i, so
// it holds N·out·in values, not the N·out·in·nf of a broadcast product (the trainer's activation
// penalty calls it on every micro-batch).
Tensor mix_edges(const Tensor& phi, const Tensor& W);

// to_graph for a basis computed by the kan_basis op: Φ (N, in, nf), a graph value, times the mixing
// weights W (out, in, nf) as one MatMul -> (N, out). W is stored reshaped to (in·nf, out) under a
// name derived from `name` (the state_dict name of the parameter it comes from).
std::string basis_graph_matmul(ExportGraph& g, const std::string& phi, const Tensor& W, const std::string& name);

// Checks, before any work, that a sparsity penalty set by `setting` (e.g. "train.kan_regularization")
// can be computed for `model`: it must hold at least one KAN layer, and every KAN layer must have
// one: the weights penalty (has_regularization), or with `activations` pykan's penalty on
// activations (edge_activations). Errors name the setting, the first layer without one and its basis.
void check_kan_regularization(const Module& model, const std::string& setting, bool activations = false);

using KANLayerFactory =
    std::function<std::shared_ptr<KANLayer>(int64_t in, int64_t out, const nlohmann::json& options)>;

struct BasisSpec {
  std::string name;     // "chebyshev": usable as projection "kan_chebyshev"
  std::string summary;  // one line for --help and docs
  KANLayerFactory make;
  // Options for the tiny float64 gradcheck layer built by the test suite (dtype f64 is added).
  nlohmann::json test_options = nlohmann::json::object();
};

// Adds a basis; a name registered twice is an error.
void register_basis(BasisSpec spec);
// Every registered basis, built-ins first, in registration order.
std::vector<std::string> basis_names();
const BasisSpec& basis_spec(const std::string& name);
bool has_basis(const std::string& name);

// basis: "bspline" or "kan_bspline" (the prefix is optional). Options are the basis' own keys plus
// the common "dtype" ("f32"/"f64"), "seed" (initialisation RNG; default generator otherwise) and
// "init" (take_init_option). Unknown keys are errors that name the key and the basis.
std::shared_ptr<KANLayer> make_kan_layer(const std::string& basis, int64_t in, int64_t out,
                                         const nlohmann::json& options = nlohmann::json::object());

// The common "init" option of every basis, removed from `options` (the basis' own reader never sees
// it) and returned: "default" (the basis' reference initialisation; also when absent) or
// "variance_preserving" (init_variance_preserving after it). Another value is an error naming `owner`
// and the choices.
std::string take_init_option(nlohmann::json& options, const std::string& owner);

// Variance-preserving initialisation, for any basis with edge_scale_parameters: after the basis'
// own init, scales its edge coefficients by one factor so that on N(0, 1) inputs each output's
// variance is 1, the input's (as LSUV does for a layer: measured, not derived, so it holds for
// every basis and option). The variance is measured on a fixed probe of 1,024 N(0, 1) rows (its own
// generator: the layer's initialisation RNG is not advanced), per output across the rows (so a
// bias does not count), averaged over the outputs.
void init_variance_preserving(KANLayer& layer);

// A basis' options: the config reader (core/config.h; unknown keys are errors naming the key and
// the basis, and every read is the option's declaration, which `knot config --schema bases` lists),
// plus the types the bases hold (int, uint64_t, a list of numbers) and the common keys "dtype" and
// "seed": Options o(j, "kan_chebyshev"); int d = o.get<int>("degree", 4, "polynomial degree"); ...;
// o.finish();
class Options : public config::Reader {
 public:
  Options(const nlohmann::json& j, std::string owner);
  template <typename T>
  T get(const std::string& key, const T& fallback, std::string_view doc = {}) {
    if constexpr (std::is_same_v<T, int> || std::is_same_v<T, uint64_t>) {
      const int64_t v = Reader::get<int64_t>(key, static_cast<int64_t>(fallback), doc);
      const bool fits = std::is_same_v<T, int> ? (v >= INT32_MIN && v <= INT32_MAX) : v >= 0;
      KNOT_CHECK(fits, "config '{}': key '{}' must be {}, got {}", context(), key,
                 std::is_same_v<T, int> ? "a 32-bit integer" : "a non-negative integer", v);
      return static_cast<T>(v);
    } else if constexpr (std::is_same_v<T, std::vector<double>>) {
      const nlohmann::json v = Reader::get<nlohmann::json>(key, nlohmann::json(fallback), doc);
      bool numbers = v.is_array();
      for (const auto& x : v) numbers = numbers && x.is_number();
      KNOT_CHECK(numbers, "config '{}': key '{}' must be a list of numbers, got {}", context(), key, v.dump());
      return v.get<std::vector<double>>();
    } else {
      return Reader::get<T>(key, fallback, doc);
    }
  }
  DType dtype();                 // "dtype", default f32
  Generator* generator();        // "seed" -> an owned generator; otherwise the default generator
  const std::string& owner() const { return context(); }

 private:
  std::shared_ptr<Generator> gen_;
};

}  // namespace knot::nn

// Defines the registration function of a built-in basis (listed in nn/bases/builtin.def).
#define KNOT_REGISTER_BASIS(name) void knot_register_basis_##name()
