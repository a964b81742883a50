// Per-element math shared by the CPU loops and the CUDA kernels (KNOT_HD, see core/hd.h).
// Each unary op has a forward f(x) and a derivative written in terms of x and y = f(x), so
// backward can use whichever it saved. `a` and `b` are the op's scalar parameters
// (leaky_relu slope, elu alpha, pow exponent, clamp bounds).
#pragma once

#include <math.h>  // the global float/double overloads that nvcc also provides on the device

#include <type_traits>

#include "core/hd.h"

namespace knot {

enum class UnaryOp {
  neg, exp, log, sqrt, abs, pow_scalar, clamp,
  relu, gelu_erf, gelu_tanh, silu, sigmoid, tanh, elu, leaky_relu, softplus,
  sin, cos,
};

enum class BinaryOp { add, sub, mul, div, pow, maximum, minimum, eq, ne, lt, le, gt, ge };

const char* unary_name(UnaryOp op);
const char* binary_name(BinaryOp op);

// Calls f(std::integral_constant<UnaryOp, op>{}) so the op is a compile-time constant inside the
// kernel loop (host code; the CPU loops and the CUDA launches both use it).
template <typename F>
decltype(auto) with_unary_op(UnaryOp op, F&& f) {
#define KNOT_U(name) \
  case UnaryOp::name: return f(std::integral_constant<UnaryOp, UnaryOp::name>{});
  switch (op) {
    KNOT_U(neg) KNOT_U(exp) KNOT_U(log) KNOT_U(sqrt) KNOT_U(abs) KNOT_U(pow_scalar) KNOT_U(clamp)
    KNOT_U(relu) KNOT_U(gelu_erf) KNOT_U(gelu_tanh) KNOT_U(silu) KNOT_U(sigmoid) KNOT_U(tanh)
    KNOT_U(elu) KNOT_U(leaky_relu) KNOT_U(softplus) KNOT_U(sin) KNOT_U(cos)
  }
#undef KNOT_U
  return f(std::integral_constant<UnaryOp, UnaryOp::neg>{});  // unreachable: every op is listed
}

template <typename F>
decltype(auto) with_binary_op(BinaryOp op, F&& f) {
#define KNOT_B(name) \
  case BinaryOp::name: return f(std::integral_constant<BinaryOp, BinaryOp::name>{});
  switch (op) {
    KNOT_B(add) KNOT_B(sub) KNOT_B(mul) KNOT_B(div) KNOT_B(pow) KNOT_B(maximum) KNOT_B(minimum)
    KNOT_B(eq) KNOT_B(ne) KNOT_B(lt) KNOT_B(le) KNOT_B(gt) KNOT_B(ge)
  }
#undef KNOT_B
  return f(std::integral_constant<BinaryOp, BinaryOp::add>{});  // unreachable
}

namespace math {

// Unqualified calls below must find the C math functions, not knot::exp(Tensor) and friends.
using ::cos;
using ::erf;
using ::exp;
using ::log;
using ::log1p;
using ::pow;
using ::sin;
using ::sqrt;
using ::tanh;

template <typename T> KNOT_HD T sigmoid(T x) { return T(1) / (T(1) + exp(-x)); }
// softplus(x) = log(1 + e^x), computed without overflow.
template <typename T> KNOT_HD T softplus(T x) { return x > T(20) ? x : log1p(exp(x)); }

constexpr double kSqrt2 = 1.4142135623730951;
constexpr double kInvSqrt2Pi = 0.3989422804014327;  // 1/sqrt(2π)
constexpr double kSqrt2OverPi = 0.7978845608028654;  // sqrt(2/π)

// gelu(x) = x·Φ(x)
template <typename T> KNOT_HD T gelu_erf(T x) { return T(0.5) * x * (T(1) + erf(x / T(kSqrt2))); }
template <typename T> KNOT_HD T gelu_erf_grad(T x) {
  return T(0.5) * (T(1) + erf(x / T(kSqrt2))) + x * T(kInvSqrt2Pi) * exp(T(-0.5) * x * x);
}
// gelu_tanh(x) = ½x(1 + tanh(√(2/π)(x + 0.044715x³)))
template <typename T> KNOT_HD T gelu_tanh(T x) {
  const T u = T(kSqrt2OverPi) * (x + T(0.044715) * x * x * x);
  return T(0.5) * x * (T(1) + tanh(u));
}
template <typename T> KNOT_HD T gelu_tanh_grad(T x) {
  const T u = T(kSqrt2OverPi) * (x + T(0.044715) * x * x * x);
  const T t = tanh(u);
  const T du = T(kSqrt2OverPi) * (T(1) + T(3 * 0.044715) * x * x);
  return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du;
}

template <UnaryOp OP, typename T>
KNOT_HD T unary_fwd(T x, T a, T b) {
  if constexpr (OP == UnaryOp::neg) return -x;
  else if constexpr (OP == UnaryOp::exp) return exp(x);
  else if constexpr (OP == UnaryOp::log) return log(x);
  else if constexpr (OP == UnaryOp::sqrt) return sqrt(x);
  else if constexpr (OP == UnaryOp::abs) return x < T(0) ? -x : x;
  else if constexpr (OP == UnaryOp::pow_scalar) return pow(x, a);
  else if constexpr (OP == UnaryOp::clamp) return x < a ? a : (x > b ? b : x);
  else if constexpr (OP == UnaryOp::relu) return x > T(0) ? x : T(0);
  else if constexpr (OP == UnaryOp::gelu_erf) return gelu_erf(x);
  else if constexpr (OP == UnaryOp::gelu_tanh) return gelu_tanh(x);
  else if constexpr (OP == UnaryOp::silu) return x * sigmoid(x);
  else if constexpr (OP == UnaryOp::sigmoid) return sigmoid(x);
  else if constexpr (OP == UnaryOp::tanh) return tanh(x);
  else if constexpr (OP == UnaryOp::elu) return x > T(0) ? x : a * (exp(x) - T(1));
  else if constexpr (OP == UnaryOp::leaky_relu) return x > T(0) ? x : a * x;
  else if constexpr (OP == UnaryOp::softplus) return softplus(x);
  else if constexpr (OP == UnaryOp::sin) return sin(x);
  else if constexpr (OP == UnaryOp::cos) return cos(x);
  else return x;
}

// d f(x) / dx, given x and y = f(x).
template <UnaryOp OP, typename T>
KNOT_HD T unary_deriv(T x, T y, T a, T b) {
  if constexpr (OP == UnaryOp::neg) return T(-1);
  else if constexpr (OP == UnaryOp::exp) return y;
  else if constexpr (OP == UnaryOp::log) return T(1) / x;
  else if constexpr (OP == UnaryOp::sqrt) return T(0.5) / y;
  else if constexpr (OP == UnaryOp::abs) return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
  else if constexpr (OP == UnaryOp::pow_scalar) return a == T(0) ? T(0) : a * pow(x, a - T(1));
  else if constexpr (OP == UnaryOp::clamp) return (x >= a && x <= b) ? T(1) : T(0);
  else if constexpr (OP == UnaryOp::relu) return x > T(0) ? T(1) : T(0);
  else if constexpr (OP == UnaryOp::gelu_erf) return gelu_erf_grad(x);
  else if constexpr (OP == UnaryOp::gelu_tanh) return gelu_tanh_grad(x);
  else if constexpr (OP == UnaryOp::silu) { const T s = sigmoid(x); return s * (T(1) + x * (T(1) - s)); }
  else if constexpr (OP == UnaryOp::sigmoid) return y * (T(1) - y);
  else if constexpr (OP == UnaryOp::tanh) return T(1) - y * y;
  else if constexpr (OP == UnaryOp::elu) return x > T(0) ? T(1) : y + a;
  else if constexpr (OP == UnaryOp::leaky_relu) return x > T(0) ? T(1) : a;
  else if constexpr (OP == UnaryOp::softplus) return sigmoid(x);
  else if constexpr (OP == UnaryOp::sin) return cos(x);
  else if constexpr (OP == UnaryOp::cos) return -sin(x);
  else return T(1);
}

template <BinaryOp OP, typename T>
KNOT_HD T binary_fwd(T x, T y) {
  if constexpr (OP == BinaryOp::add) return x + y;
  else if constexpr (OP == BinaryOp::sub) return x - y;
  else if constexpr (OP == BinaryOp::mul) return x * y;
  else if constexpr (OP == BinaryOp::div) return x / y;
  else if constexpr (OP == BinaryOp::pow) return pow(x, y);
  else if constexpr (OP == BinaryOp::maximum) return x > y ? x : y;
  else if constexpr (OP == BinaryOp::minimum) return x < y ? x : y;
  else if constexpr (OP == BinaryOp::eq) return T(x == y);
  else if constexpr (OP == BinaryOp::ne) return T(x != y);
  else if constexpr (OP == BinaryOp::lt) return T(x < y);
  else if constexpr (OP == BinaryOp::le) return T(x <= y);
  else if constexpr (OP == BinaryOp::gt) return T(x > y);
  else if constexpr (OP == BinaryOp::ge) return T(x >= y);
  else return x;
}

}  // namespace math
}  // namespace knot
