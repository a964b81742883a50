// Creation functions: empty, zeros, ones, full, arange, from_vector.
// Device tensors are filled on the host and copied (creation is never on a hot path).
#include <cmath>
#include <cstring>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace knot {

Tensor empty(const Shape& s, DType dtype, Device d) {
  check_shape(s, "empty");
  auto im = std::make_shared<TensorImpl>();
  im->storage = std::make_shared<Storage>(shape_nbytes(s, dtype_size(dtype), "empty"), d);
  im->shape = s;
  im->strides = contiguous_strides(s);
  im->dtype = dtype;
  return Tensor(std::move(im));
}

Tensor full(const Shape& s, double value, DType dtype, Device d) {
  Tensor t = empty(s, dtype, Device::cpu());
  dispatch_all(dtype, "full", [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    const T v = static_cast<T>(value);
    for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = v;
  });
  return d.is_cpu() ? t : t.to(d);
}

Tensor zeros(const Shape& s, DType dtype, Device d) {
  if (!d.is_cpu()) return full(s, 0.0, dtype, d);
  Tensor t = empty(s, dtype, d);
  std::memset(t.raw_data(), 0, t.nbytes());
  return t;
}
Tensor ones(const Shape& s, DType dtype, Device d) { return full(s, 1.0, dtype, d); }
Tensor scalar_tensor(double value, DType dtype, Device d) { return full({}, value, dtype, d); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype(), t.device()); }
Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.dtype(), t.device()); }

Tensor arange(double start, double end, double step, DType dtype) {
  KNOT_CHECK(step != 0, "arange: step must be non-zero");
  const double span = (end - start) / step;
  const int64_t n = span > 0 ? static_cast<int64_t>(std::ceil(span - 1e-12)) : 0;
  Tensor t = empty({n}, dtype);
  dispatch_all(dtype, "arange", [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(start + static_cast<double>(i) * step);
  });
  return t;
}

template <typename T>
Tensor from_vector(const std::vector<T>& v, const Shape& s) {
  KNOT_CHECK(static_cast<int64_t>(v.size()) == shape_numel(s), "from_vector: {} values do not fill shape {}",
             v.size(), shape_str(s));
  Tensor t = empty(s, dtype_of<T>::value);
  if (!v.empty()) std::memcpy(t.raw_data(), v.data(), v.size() * sizeof(T));
  return t;
}
template Tensor from_vector<float>(const std::vector<float>&, const Shape&);
template Tensor from_vector<double>(const std::vector<double>&, const Shape&);
template Tensor from_vector<int32_t>(const std::vector<int32_t>&, const Shape&);
template Tensor from_vector<int64_t>(const std::vector<int64_t>&, const Shape&);

Tensor from_values(std::initializer_list<double> v, const Shape& s, DType dtype) {
  KNOT_CHECK(static_cast<int64_t>(v.size()) == shape_numel(s), "from_values: {} values do not fill shape {}",
             v.size(), shape_str(s));
  Tensor t = empty(s, dtype);
  dispatch_all(dtype, "from_values", [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    size_t i = 0;
    for (double x : v) p[i++] = static_cast<T>(x);
  });
  return t;
}

}  // namespace knot
