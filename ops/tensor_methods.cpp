// Tensor member sugar (declared in core/tensor.h) forwarding to the free ops, and in-place writes.
#include "kernels/elementwise.h"
#include "ops/ops.h"

namespace knot {

Tensor Tensor::contiguous() const { return knot::contiguous(*this); }
Tensor Tensor::clone() const { return knot::clone(*this); }
Tensor Tensor::to(DType t) const { return to_dtype(*this, t); }
Tensor Tensor::to(Device d) const { return to_device(*this, d); }
Tensor Tensor::reshape(const Shape& s) const { return knot::reshape(*this, s); }
Tensor Tensor::view(const Shape& s) const { return knot::view(*this, s); }
Tensor Tensor::flatten(int64_t start, int64_t end) const { return knot::flatten(*this, start, end); }
Tensor Tensor::transpose(int64_t d0, int64_t d1) const { return knot::transpose(*this, d0, d1); }
Tensor Tensor::permute(const std::vector<int64_t>& order) const { return knot::permute(*this, order); }
Tensor Tensor::slice(int64_t dim, int64_t start, int64_t end, int64_t step) const {
  return knot::slice(*this, dim, start, end, step);
}
Tensor Tensor::select(int64_t dim, int64_t index) const { return knot::select(*this, dim, index); }
Tensor Tensor::expand(const Shape& s) const { return knot::expand(*this, s); }
Tensor Tensor::squeeze(int64_t dim) const { return knot::squeeze(*this, dim); }
Tensor Tensor::unsqueeze(int64_t dim) const { return knot::unsqueeze(*this, dim); }
Tensor Tensor::matmul(const Tensor& o) const { return knot::matmul(*this, o); }
Tensor Tensor::sum(const std::vector<int64_t>& dims, bool keepdim) const { return knot::sum(*this, dims, keepdim); }
Tensor Tensor::mean(const std::vector<int64_t>& dims, bool keepdim) const { return knot::mean(*this, dims, keepdim); }
Tensor Tensor::exp() const { return knot::exp(*this); }
Tensor Tensor::log() const { return knot::log(*this); }
Tensor Tensor::relu() const { return knot::relu(*this); }

namespace {
void check_inplace(const Tensor& t, const char* op) {
  KNOT_CHECK(!(GradMode::enabled() && t.requires_grad()),
             "{}: in-place write to a tensor that requires grad ({}); do it under NoGradGuard, as optimizers "
             "do, or on a detached copy",
             op, t.desc());
}
}  // namespace

const Tensor& Tensor::fill_(double v) const {
  check_inplace(*this, "fill_");
  kernels::fill(*this, v);
  bump_version();
  return *this;
}

const Tensor& Tensor::copy_(const Tensor& src) const {
  check_inplace(*this, "copy_");
  kernels::copy(*this, src);
  bump_version();
  return *this;
}

const Tensor& Tensor::add_(const Tensor& o, double alpha) const {
  check_inplace(*this, "add_");
  kernels::axpy(*this, o, alpha);
  bump_version();
  return *this;
}

const Tensor& Tensor::mul_(double s) const {
  check_inplace(*this, "mul_");
  kernels::scale(*this, s);
  bump_version();
  return *this;
}

}  // namespace knot
