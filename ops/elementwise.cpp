// Elementwise ops and activations (forward through kernels/elementwise.h, backward as lambdas).
#include "ops/elementwise.h"

#include "kernels/elementwise.h"
#include "ops/ops.h"

namespace knot {
namespace {

using kernels::unary_bwd_needs_x;
using kernels::unary_bwd_needs_y;

Tensor unary_op(UnaryOp op, const Tensor& x, double a = 0, double b = 0) {
  const char* name = unary_name(op);
  KNOT_CHECK(is_floating(x.dtype()), "{}: expected a float tensor, got {}", name, x.desc());
  Tensor y = kernels::unary(op, x, a, b);
  if (needs_grad({x})) {
    SavedTensor sx = unary_bwd_needs_x(op) ? SavedTensor(x) : SavedTensor();
    SavedTensor sy = unary_bwd_needs_y(op) ? SavedTensor(y.detach()) : SavedTensor();
    attach_grad(y, name, {x}, [op, name, sx, sy, a, b](const Tensor& g) {
      return std::vector<Tensor>{kernels::unary_bwd(op, sx.get(name), sy.get(name), g, a, b)};
    });
  }
  return y;
}

Tensor scalar_like(double s, const Tensor& t) { return scalar_tensor(s, t.dtype(), t.device()); }

Tensor binary_op(BinaryOp op, const Tensor& a, const Tensor& b) {
  // Checked here (not only in the kernel) so the message shows both shapes, not just the dtypes.
  KNOT_CHECK(a.dtype() == b.dtype(), "{}: dtypes differ: {} and {}; convert one with .to(dtype)", binary_name(op),
             a.desc(), b.desc());
  Tensor out = kernels::binary(op, a, b);
  if (!needs_grad({a, b})) return out;
  const char* name = binary_name(op);
  const bool ga = a.requires_grad(), gb = b.requires_grad();
  const Shape sa = a.shape(), sb = b.shape();
  switch (op) {
    case BinaryOp::add:
      return attach_grad(out, name, {a, b}, [=](const Tensor& g) {
        return std::vector<Tensor>{ga ? sum_to(g, sa) : Tensor(), gb ? sum_to(g, sb) : Tensor()};
      });
    case BinaryOp::sub:
      return attach_grad(out, name, {a, b}, [=](const Tensor& g) {
        return std::vector<Tensor>{ga ? sum_to(g, sa) : Tensor(), gb ? sum_to(neg(g), sb) : Tensor()};
      });
    case BinaryOp::mul: {
      SavedTensor xa = gb ? SavedTensor(a) : SavedTensor(), xb = ga ? SavedTensor(b) : SavedTensor();
      return attach_grad(out, name, {a, b}, [=](const Tensor& g) {
        return std::vector<Tensor>{ga ? sum_to(mul(g, xb.get(name)), sa) : Tensor(),
                                   gb ? sum_to(mul(g, xa.get(name)), sb) : Tensor()};
      });
    }
    case BinaryOp::div: {
      // d(a/b)/da = 1/b, d(a/b)/db = -a/b² = -out/b
      SavedTensor xb(b), y = gb ? SavedTensor(out.detach()) : SavedTensor();
      return attach_grad(out, name, {a, b}, [=](const Tensor& g) {
        const Tensor& bv = xb.get(name);
        return std::vector<Tensor>{ga ? sum_to(div(g, bv), sa) : Tensor(),
                                   gb ? sum_to(neg(div(mul(g, y.get(name)), bv)), sb) : Tensor()};
      });
    }
    case BinaryOp::pow: {
      // d(a^b)/da = b·a^(b-1), d(a^b)/db = a^b·log a
      SavedTensor xa(a), xb(b), y(out.detach());
      return attach_grad(out, name, {a, b}, [=](const Tensor& g) {
        const Tensor& av = xa.get(name);
        const Tensor& bv = xb.get(name);
        return std::vector<Tensor>{
            ga ? sum_to(mul(g, mul(bv, pow(av, sub(bv, scalar_like(1.0, bv))))), sa) : Tensor(),
            gb ? sum_to(mul(g, mul(y.get(name), log(av))), sb) : Tensor()};
      });
    }
    case BinaryOp::maximum:
    case BinaryOp::minimum: {
      // The gradient goes to a where a wins or ties, to b elsewhere.
      const BinaryOp pick = op == BinaryOp::maximum ? BinaryOp::ge : BinaryOp::le;
      Tensor mask_a = kernels::binary(pick, a, b);
      SavedTensor ma(mask_a);
      return attach_grad(out, name, {a, b}, [=](const Tensor& g) {
        const Tensor& m = ma.get(name);
        return std::vector<Tensor>{ga ? sum_to(mul(g, m), sa) : Tensor(),
                                   gb ? sum_to(mul(g, rsub(1.0, m)), sb) : Tensor()};
      });
    }
    default:
      return out;  // comparisons are not differentiable
  }
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) {
  if (is_integral(b.dtype()) && b.is_cpu()) {  // integer x/0 is undefined behaviour (SIGFPE), not inf
    for (int64_t v : b.to_vector<int64_t>())
      KNOT_CHECK(v != 0, "div: integer division by zero ({} / {})", a.desc(), b.desc());
  }
  return binary_op(BinaryOp::div, a, b);
}
Tensor pow(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::pow, a, b); }
Tensor maximum(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::maximum, a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::minimum, a, b); }
Tensor add(const Tensor& a, double s) { return add(a, scalar_like(s, a)); }
Tensor mul(const Tensor& a, double s) { return mul(a, scalar_like(s, a)); }
Tensor rsub(double s, const Tensor& a) { return sub(scalar_like(s, a), a); }
Tensor rdiv(double s, const Tensor& a) { return div(scalar_like(s, a), a); }
Tensor pow(const Tensor& a, double p) { return unary_op(UnaryOp::pow_scalar, a, p); }

Tensor neg(const Tensor& x) { return unary_op(UnaryOp::neg, x); }
Tensor exp(const Tensor& x) { return unary_op(UnaryOp::exp, x); }
Tensor log(const Tensor& x) { return unary_op(UnaryOp::log, x); }
Tensor sqrt(const Tensor& x) { return unary_op(UnaryOp::sqrt, x); }
Tensor abs(const Tensor& x) { return unary_op(UnaryOp::abs, x); }
Tensor sin(const Tensor& x) { return unary_op(UnaryOp::sin, x); }
Tensor cos(const Tensor& x) { return unary_op(UnaryOp::cos, x); }
Tensor clamp(const Tensor& x, double lo, double hi) {
  KNOT_CHECK(lo <= hi, "clamp: lower bound {} is above upper bound {}", lo, hi);
  return unary_op(UnaryOp::clamp, x, lo, hi);
}
Tensor relu(const Tensor& x) { return unary_op(UnaryOp::relu, x); }
Tensor gelu(const Tensor& x, bool tanh_approx) { return unary_op(tanh_approx ? UnaryOp::gelu_tanh : UnaryOp::gelu_erf, x); }
Tensor silu(const Tensor& x) { return unary_op(UnaryOp::silu, x); }
Tensor sigmoid(const Tensor& x) { return unary_op(UnaryOp::sigmoid, x); }
Tensor tanh(const Tensor& x) { return unary_op(UnaryOp::tanh, x); }
Tensor elu(const Tensor& x, double alpha) { return unary_op(UnaryOp::elu, x, alpha); }
Tensor leaky_relu(const Tensor& x, double slope) { return unary_op(UnaryOp::leaky_relu, x, slope); }
Tensor softplus(const Tensor& x) { return unary_op(UnaryOp::softplus, x); }

bool is_activation(const std::string& n) {
  return n == "relu" || n == "gelu" || n == "gelu_tanh" || n == "silu" || n == "swish" || n == "sigmoid" ||
         n == "tanh" || n == "elu" || n == "leaky_relu" || n == "softplus" || n == "identity";
}

Tensor activation(const std::string& n, const Tensor& x) {
  if (n == "relu") return relu(x);
  if (n == "gelu") return gelu(x);
  if (n == "gelu_tanh") return gelu(x, true);
  if (n == "silu" || n == "swish") return silu(x);
  if (n == "sigmoid") return sigmoid(x);
  if (n == "tanh") return tanh(x);
  if (n == "elu") return elu(x);
  if (n == "leaky_relu") return leaky_relu(x);
  if (n == "softplus") return softplus(x);
  if (n == "identity") return x;
  KNOT_FAIL("activation: unknown activation '{}' (expected relu, gelu, gelu_tanh, silu, swish, sigmoid, tanh, "
            "elu, leaky_relu, softplus or identity)", n);
}

Tensor eq(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::ge, a, b); }

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const int64_t lead = g.dim() - static_cast<int64_t>(shape.size());
  KNOT_CHECK(lead >= 0, "sum_to: cannot reduce {} to {}", shape_str(g.shape()), shape_str(shape));
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < g.dim(); ++d)
    if (d < lead || (shape[d - lead] == 1 && g.shape()[d] != 1)) dims.push_back(d);
  Tensor r = dims.empty() ? g : sum(g, dims, true);
  return r.shape() == shape ? r : reshape(r, shape);
}

}  // namespace knot
