// Tensor: a shared handle to a TensorImpl (shape, element strides, offset, dtype) over a Storage.
// Views share the storage; `contiguous()` copies only when needed. Copying a Tensor copies the
// handle, not the data (like torch.Tensor).
//
// The methods below the "ops" line are thin sugar over the differentiable free functions in
// ops/ (defined there); the core itself knows nothing about kernels.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"
#include "core/storage.h"

namespace knot {

struct Node;
class Tensor;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;       // in elements
  int64_t offset = 0;  // in elements
  DType dtype = DType::f32;

  // autograd state
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;       // accumulated gradient of a leaf
  std::shared_ptr<Node> grad_fn;          // the node that produced this tensor (non-leaf)
  std::weak_ptr<Node> grad_accumulator;   // cached AccumulateGrad node of a leaf
  // Called by backward once this leaf's gradient for that backward is complete (all its uses
  // summed), with the leaf and that gradient. When set and .grad is empty, the gradient is handed to
  // the hook instead of being stored in .grad (an optimizer step inside backward; optim/optimizer.h).
  std::function<void(const Tensor& leaf, const Tensor& grad)> post_accumulate_hook;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }

  // ---- metadata ----
  const Shape& shape() const { return checked().shape; }
  const Shape& strides() const { return checked().strides; }
  int64_t dim() const { return static_cast<int64_t>(checked().shape.size()); }
  int64_t size(int64_t d) const;
  int64_t stride(int64_t d) const;
  int64_t offset() const { return checked().offset; }
  int64_t numel() const { return shape_numel(checked().shape); }
  DType dtype() const { return checked().dtype; }
  Device device() const { return checked().storage->device; }
  bool is_cuda() const { return device().is_cuda(); }
  bool is_cpu() const { return device().is_cpu(); }
  bool is_contiguous() const;
  size_t element_size() const { return dtype_size(dtype()); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * element_size(); }
  const std::shared_ptr<Storage>& storage() const { return checked().storage; }
  uint64_t version() const { return checked().storage->version; }
  void bump_version() const { ++checked().storage->version; }
  std::string str() const;         // values, for printing and error messages
  std::string desc() const;        // "f32(4, 3) cpu"

  // Pointer to the first element (storage + offset). The dtype must match T.
  template <typename T> T* data() const {
    KNOT_CHECK(dtype_of<T>::value == dtype(), "data: tensor is {} but {} was asked for",
               dtype_name(dtype()), dtype_name(dtype_of<T>::value));
    return static_cast<T*>(raw_data());
  }
  void* raw_data() const;

  // Value of a one-element tensor as double (any dtype, CPU or copied from the device).
  double item() const;
  // All values in logical (row-major) order, converted to T.
  template <typename T> std::vector<T> to_vector() const;

  // ---- autograd ----
  bool requires_grad() const { return checked().requires_grad; }
  // Marks a leaf as needing a gradient. Only float tensors, and only leaves, can be marked.
  const Tensor& requires_grad_(bool on = true) const;
  bool is_leaf() const { return checked().grad_fn == nullptr; }
  const std::shared_ptr<Node>& grad_fn() const { return checked().grad_fn; }
  Tensor grad() const { return Tensor(checked().grad); }
  void set_grad(const Tensor& g) const { checked().grad = g.impl_; }
  void zero_grad() const { checked().grad.reset(); }
  // Runs the backward pass from this tensor. `grad` defaults to 1 for a one-element tensor.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;
  // Same data, cut from the graph.
  Tensor detach() const;

  // ---- ops (defined in ops/; see there for shapes and gradients) ----
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(DType t) const;
  Tensor to(Device d) const;
  Tensor reshape(const Shape& s) const;
  Tensor view(const Shape& s) const;
  Tensor flatten(int64_t start = 0, int64_t end = -1) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const { return transpose(0, 1); }
  Tensor permute(const std::vector<int64_t>& order) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;
  Tensor expand(const Shape& s) const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;

  Tensor matmul(const Tensor& o) const;
  Tensor sum(const std::vector<int64_t>& dims = {}, bool keepdim = false) const;
  Tensor mean(const std::vector<int64_t>& dims = {}, bool keepdim = false) const;
  Tensor exp() const;
  Tensor log() const;
  Tensor relu() const;

  // In-place writes: allowed only where no graph is recorded (under NoGradGuard, or on tensors
  // that do not require grad). They bump the storage version.
  const Tensor& fill_(double v) const;
  const Tensor& zero_() const { return fill_(0.0); }
  const Tensor& copy_(const Tensor& src) const;       // src broadcast to this shape
  const Tensor& add_(const Tensor& o, double alpha = 1.0) const;
  const Tensor& mul_(double s) const;

 private:
  TensorImpl& checked() const {
    if (!impl_) throw Error("tensor: use of an undefined tensor");
    return *impl_;
  }
  std::shared_ptr<TensorImpl> impl_;
};

// ---- creation (core/creation.cpp) ----
struct TensorOptions {
  DType dtype = DType::f32;
  Device device = Device::cpu();
};

Tensor empty(const Shape& s, DType dtype = DType::f32, Device d = Device::cpu());
Tensor zeros(const Shape& s, DType dtype = DType::f32, Device d = Device::cpu());
Tensor ones(const Shape& s, DType dtype = DType::f32, Device d = Device::cpu());
Tensor full(const Shape& s, double value, DType dtype = DType::f32, Device d = Device::cpu());
Tensor scalar_tensor(double value, DType dtype = DType::f32, Device d = Device::cpu());
Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::f32);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor empty_like(const Tensor& t);  // same shape/dtype/device, contiguous

// From host values in row-major order; the numel of `s` must match the vector's size.
template <typename T> Tensor from_vector(const std::vector<T>& v, const Shape& s);
template <typename T> Tensor from_vector(const std::vector<T>& v) { return from_vector(v, {static_cast<int64_t>(v.size())}); }
Tensor from_values(std::initializer_list<double> v, const Shape& s, DType dtype = DType::f32);

// Creates a tensor header over an existing storage (used by views and kernels).
Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset);

}  // namespace knot
