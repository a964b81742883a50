// CPU elementwise kernels (see kernels/elementwise.h). Contiguous inputs of equal shape take a flat
// vectorisable loop; everything else goes through the broadcast-aware strided loop.
#include "kernels/elementwise.h"

#include "core/dispatch.h"
#include "core/strided.h"
#include "kernels/cpu/loops.h"

namespace knot {

const char* unary_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::neg: return "neg";
    case UnaryOp::exp: return "exp";
    case UnaryOp::log: return "log";
    case UnaryOp::sqrt: return "sqrt";
    case UnaryOp::abs: return "abs";
    case UnaryOp::pow_scalar: return "pow";
    case UnaryOp::clamp: return "clamp";
    case UnaryOp::relu: return "relu";
    case UnaryOp::gelu_erf: return "gelu";
    case UnaryOp::gelu_tanh: return "gelu_tanh";
    case UnaryOp::silu: return "silu";
    case UnaryOp::sigmoid: return "sigmoid";
    case UnaryOp::tanh: return "tanh";
    case UnaryOp::elu: return "elu";
    case UnaryOp::leaky_relu: return "leaky_relu";
    case UnaryOp::softplus: return "softplus";
    case UnaryOp::sin: return "sin";
    case UnaryOp::cos: return "cos";
  }
  return "unary";
}

const char* binary_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::add: return "add";
    case BinaryOp::sub: return "sub";
    case BinaryOp::mul: return "mul";
    case BinaryOp::div: return "div";
    case BinaryOp::pow: return "pow";
    case BinaryOp::maximum: return "maximum";
    case BinaryOp::minimum: return "minimum";
    case BinaryOp::eq: return "eq";
    case BinaryOp::ne: return "ne";
    case BinaryOp::lt: return "lt";
    case BinaryOp::le: return "le";
    case BinaryOp::gt: return "gt";
    case BinaryOp::ge: return "ge";
  }
  return "binary";
}

namespace kernels {

bool unary_bwd_needs_y(UnaryOp op) {
  return op == UnaryOp::exp || op == UnaryOp::sqrt || op == UnaryOp::sigmoid || op == UnaryOp::tanh ||
         op == UnaryOp::elu;
}
bool unary_bwd_needs_x(UnaryOp op) {
  return !(op == UnaryOp::exp || op == UnaryOp::sqrt || op == UnaryOp::sigmoid || op == UnaryOp::tanh ||
           op == UnaryOp::neg);
}

namespace cpu {

Tensor unary(UnaryOp op, const Tensor& x_in, double a, double b) {
  const Tensor x = dense(x_in);
  Tensor y = empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), unary_name(op), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    const T ta = static_cast<T>(a), tb = static_cast<T>(b);
    with_unary_op(op, [&](auto opc) {
      constexpr UnaryOp OP = decltype(opc)::value;
      parallel_for(x.numel(), kParallelGrain, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) py[i] = math::unary_fwd<OP>(px[i], ta, tb);
      });
    });
  });
  return y;
}

Tensor unary_bwd(UnaryOp op, const Tensor& x_in, const Tensor& y_in, const Tensor& g_in, double a, double b) {
  const Tensor g = dense(g_in);
  const Tensor x = x_in.defined() ? dense(x_in) : Tensor();
  const Tensor y = y_in.defined() ? dense(y_in) : Tensor();
  Tensor gx = empty(g.shape(), g.dtype());
  dispatch_float(g.dtype(), unary_name(op), [&](auto tag) {
    using T = decltype(tag);
    const T* pg = g.data<T>();
    const T* px = x.defined() ? x.data<T>() : nullptr;
    const T* py = y.defined() ? y.data<T>() : nullptr;
    T* pgx = gx.data<T>();
    const T ta = static_cast<T>(a), tb = static_cast<T>(b);
    with_unary_op(op, [&](auto opc) {
      constexpr UnaryOp OP = decltype(opc)::value;
      parallel_for(g.numel(), kParallelGrain, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          const T xv = px ? px[i] : T(0), yv = py ? py[i] : T(0);
          pgx[i] = pg[i] * math::unary_deriv<OP>(xv, yv, ta, tb);
        }
      });
    });
  });
  return gx;
}

Tensor binary(BinaryOp op, const Tensor& x, const Tensor& y) {
  const Shape out_shape = broadcast_shapes(x.shape(), y.shape(), binary_name(op));
  Tensor out = empty(out_shape, x.dtype());
  dispatch_all(x.dtype(), binary_name(op), [&](auto tag) {
    using T = decltype(tag);
    const T* bx = static_cast<const T*>(x.storage()->data);
    const T* by = static_cast<const T*>(y.storage()->data);
    T* po = out.data<T>();
    with_binary_op(op, [&](auto opc) {
      constexpr BinaryOp OP = decltype(opc)::value;
      const int64_t n = out.numel();
      if (x.shape() == y.shape() && x.is_contiguous() && y.is_contiguous()) {
        const T* px = bx + x.offset();
        const T* py = by + y.offset();
        parallel_for(n, kParallelGrain, [&](int64_t i0, int64_t i1) {
          for (int64_t i = i0; i < i1; ++i) po[i] = math::binary_fwd<OP>(px[i], py[i]);
        });
      } else if (y.numel() == 1 && x.shape() == out_shape && x.is_contiguous()) {
        const T* px = bx + x.offset();
        const T s = by[y.offset()];
        parallel_for(n, kParallelGrain, [&](int64_t i0, int64_t i1) {
          for (int64_t i = i0; i < i1; ++i) po[i] = math::binary_fwd<OP>(px[i], s);
        });
      } else {
        for_each_2(out_shape, broadcast_strides(x, out_shape), x.offset(), broadcast_strides(y, out_shape),
                   y.offset(), [&](int64_t i, int64_t ox, int64_t oy) { po[i] = math::binary_fwd<OP>(bx[ox], by[oy]); });
      }
    });
  });
  return out;
}

void copy(const Tensor& dst, const Tensor& src) {
  KNOT_CHECK(broadcast_shapes(dst.shape(), src.shape(), "copy") == dst.shape(),
             "copy: source shape {} cannot be broadcast to destination shape {}", shape_str(src.shape()),
             shape_str(dst.shape()));
  dispatch_all(dst.dtype(), "copy", [&](auto dtag) {
    using D = decltype(dtag);
    dispatch_all(src.dtype(), "copy", [&](auto stag) {
      using S = decltype(stag);
      D* bd = static_cast<D*>(dst.storage()->data);
      const S* bs = static_cast<const S*>(src.storage()->data);
      if (dst.is_contiguous() && src.is_contiguous() && dst.shape() == src.shape()) {
        D* pd = bd + dst.offset();
        const S* ps = bs + src.offset();
        parallel_for(dst.numel(), kParallelGrain, [&](int64_t i0, int64_t i1) {
          for (int64_t i = i0; i < i1; ++i) pd[i] = static_cast<D>(ps[i]);
        });
        return;
      }
      for_each_2(dst.shape(), dst.strides(), dst.offset(), broadcast_strides(src, dst.shape()), src.offset(),
                 [&](int64_t, int64_t od, int64_t os) { bd[od] = static_cast<D>(bs[os]); });
    });
  });
}

void fill(const Tensor& dst, double value) {
  dispatch_all(dst.dtype(), "fill", [&](auto tag) {
    using T = decltype(tag);
    T* base = static_cast<T*>(dst.storage()->data);
    const T v = static_cast<T>(value);
    for_each_offset(dst.shape(), dst.strides(), dst.offset(), [&](int64_t o) { base[o] = v; });
  });
}

void axpy(const Tensor& dst, const Tensor& src, double alpha) {
  KNOT_CHECK(broadcast_shapes(dst.shape(), src.shape(), "add_") == dst.shape(),
             "add_: shape {} cannot be broadcast to the destination's shape {}", shape_str(src.shape()),
             shape_str(dst.shape()));
  check_same_dtype("add_", dst, src);
  dispatch_all(dst.dtype(), "add_", [&](auto tag) {
    using T = decltype(tag);
    T* bd = static_cast<T*>(dst.storage()->data);
    const T* bs = static_cast<const T*>(src.storage()->data);
    const T a = static_cast<T>(alpha);
    if (dst.is_contiguous() && src.is_contiguous() && dst.shape() == src.shape()) {
      T* pd = bd + dst.offset();
      const T* ps = bs + src.offset();
      parallel_for(dst.numel(), kParallelGrain, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) pd[i] += a * ps[i];
      });
      return;
    }
    for_each_2(dst.shape(), dst.strides(), dst.offset(), broadcast_strides(src, dst.shape()), src.offset(),
               [&](int64_t, int64_t od, int64_t os) { bd[od] += a * bs[os]; });
  });
}

void scale(const Tensor& dst, double s) {
  dispatch_all(dst.dtype(), "mul_", [&](auto tag) {
    using T = decltype(tag);
    T* base = static_cast<T*>(dst.storage()->data);
    const T v = static_cast<T>(s);
    for_each_offset(dst.shape(), dst.strides(), dst.offset(), [&](int64_t o) { base[o] *= v; });
  });
}

}  // namespace cpu
}  // namespace kernels
}  // namespace knot
