// Tensor metadata, element access, printing and the autograd flags of a leaf.
#include "core/tensor.h"

#include <cmath>
#include <sstream>

#include "core/dispatch.h"
#include "core/strided.h"

namespace knot {

// wrap_dim accepts dim 0 / -1 on a 0-dim tensor (for reductions); here there is no such dim.
int64_t Tensor::size(int64_t d) const {
  KNOT_CHECK(dim() > 0, "size: dim {} out of range for a tensor with 0 dims", d);
  return shape()[wrap_dim(d, dim(), "size")];
}
int64_t Tensor::stride(int64_t d) const {
  KNOT_CHECK(dim() > 0, "stride: dim {} out of range for a tensor with 0 dims", d);
  return strides()[wrap_dim(d, dim(), "stride")];
}

bool Tensor::is_contiguous() const {
  const auto& s = shape();
  const auto& st = strides();
  if (shape_numel(s) == 0) return true;  // no elements, nothing out of order (and empty() makes such strides)
  int64_t expected = 1;
  for (int i = static_cast<int>(s.size()) - 1; i >= 0; --i) {
    if (s[i] != 1 && st[i] != expected) return false;
    expected *= s[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  const auto& im = checked();
  return static_cast<char*>(im.storage->data) + im.offset * static_cast<int64_t>(dtype_size(im.dtype));
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  if (!is_cpu()) return to(Device::cpu()).to_vector<T>();
  std::vector<T> out;
  out.reserve(static_cast<size_t>(numel()));
  dispatch_all(dtype(), "to_vector", [&](auto tag) {
    using S = decltype(tag);
    const S* base = static_cast<const S*>(storage()->data);
    for_each_offset(shape(), strides(), offset(), [&](int64_t o) { out.push_back(static_cast<T>(base[o])); });
  });
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

double Tensor::item() const {
  KNOT_CHECK(numel() == 1, "item: tensor has {} elements {}, expected exactly one", numel(), shape_str(shape()));
  return to_vector<double>()[0];
}

std::string Tensor::desc() const {
  return fmt::format("{}{} {}", dtype_name(dtype()), shape_str(shape()), device().str());
}

std::string Tensor::str() const {
  if (!defined()) return "Tensor(undefined)";
  std::ostringstream os;
  os << "Tensor(" << desc();
  if (requires_grad()) os << ", requires_grad";
  os << ")\n";
  const std::vector<double> v = to_vector<double>();
  const int64_t last = dim() == 0 ? 1 : shape().back();
  const size_t shown = std::min<size_t>(v.size(), 64);
  os << "[";
  for (size_t i = 0; i < shown; ++i) {
    if (i && last > 0 && i % static_cast<size_t>(last) == 0) os << "\n ";
    else if (i) os << ", ";
    os << fmt::format("{:.6g}", v[i]);
  }
  if (shown < v.size()) os << ", ... (" << v.size() << " values)";
  os << "]";
  return os.str();
}

const Tensor& Tensor::requires_grad_(bool on) const {
  auto& im = checked();
  KNOT_CHECK(!on || is_floating(im.dtype), "requires_grad_: only float tensors can require grad, got {}",
             dtype_name(im.dtype));
  KNOT_CHECK(im.grad_fn == nullptr,
             "requires_grad_: only leaf tensors can be marked; this tensor was produced by an op "
             "(use detach() first)");
  im.requires_grad = on;
  return *this;
}

Tensor Tensor::detach() const {
  auto im = std::make_shared<TensorImpl>();
  im->storage = storage();
  im->shape = shape();
  im->strides = strides();
  im->offset = offset();
  im->dtype = dtype();
  return Tensor(std::move(im));
}

Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset) {
  auto im = std::make_shared<TensorImpl>();
  im->storage = base.storage();
  im->shape = shape;
  im->strides = strides;
  im->offset = offset;
  im->dtype = base.dtype();
  return Tensor(std::move(im));
}

}  // namespace knot
