// Elementwise kernels: unary maps and their backward, broadcasting binary ops, strided copy with
// dtype conversion, fill and in-place axpy. Outputs are new contiguous tensors.
#pragma once

#include "kernels/dispatch.h"
#include "kernels/math.h"

namespace knot::kernels {

#define KNOT_ELEMENTWISE_KERNELS(X)                                                                             \
  /* y = f(x); x: any shape (float) -> y: same shape, contiguous */                                             \
  X(Tensor, unary, (UnaryOp op, const Tensor& x, double a, double b))                                           \
  /* gx = g * f'(x); x or y may be undefined when the op's derivative does not need it */                       \
  X(Tensor, unary_bwd, (UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& g, double a, double b))     \
  /* out = x (op) y with NumPy broadcasting; same dtype */                                                      \
  X(Tensor, binary, (BinaryOp op, const Tensor& x, const Tensor& y))                                            \
  /* dst[...] = src[...] (src broadcast to dst's shape, converted to dst's dtype); any strides */               \
  X(void, copy, (const Tensor& dst, const Tensor& src))                                                         \
  X(void, fill, (const Tensor& dst, double value))                                                              \
  /* dst += alpha * src (src broadcast to dst) */                                                               \
  X(void, axpy, (const Tensor& dst, const Tensor& src, double alpha))                                           \
  /* dst *= s */                                                                                                \
  X(void, scale, (const Tensor& dst, double s))

namespace cpu { KNOT_ELEMENTWISE_KERNELS(KNOT_DECLARE_KERNEL) }
namespace cuda { KNOT_ELEMENTWISE_KERNELS(KNOT_DECLARE_KERNEL) }

inline Tensor unary(UnaryOp op, const Tensor& x, double a = 0, double b = 0) { return KNOT_DISPATCH(x, unary(op, x, a, b)); }
inline Tensor unary_bwd(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& g, double a = 0, double b = 0) {
  return KNOT_DISPATCH(g, unary_bwd(op, x, y, g, a, b));
}
inline Tensor binary(BinaryOp op, const Tensor& x, const Tensor& y) {
  check_same_device(binary_name(op), x, y);
  check_same_dtype(binary_name(op), x, y);
  return KNOT_DISPATCH(x, binary(op, x, y));
}
// Copies between devices go through the CUDA backend (which knows both sides).
inline void copy(const Tensor& dst, const Tensor& src) {
  if (dst.is_cpu() && src.is_cpu()) return cpu::copy(dst, src);
  return cuda::copy(dst, src);
}
inline void fill(const Tensor& dst, double v) { KNOT_DISPATCH(dst, fill(dst, v)); }
inline void axpy(const Tensor& dst, const Tensor& src, double alpha) {
  check_same_device("add_", dst, src);
  KNOT_DISPATCH(dst, axpy(dst, src, alpha));
}
inline void scale(const Tensor& dst, double s) { KNOT_DISPATCH(dst, scale(dst, s)); }

// Which saved values unary_bwd reads for an op.
bool unary_bwd_needs_x(UnaryOp op);
bool unary_bwd_needs_y(UnaryOp op);

}  // namespace knot::kernels
