// dtype dispatch: calls f(T{}) with the C++ type of a runtime DType, so a kernel is written once
// as a generic lambda:   dispatch_float(x.dtype(), "exp", [&](auto tag) { using T = decltype(tag); ... });
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "core/error.h"

namespace knot {

template <typename F>
decltype(auto) dispatch_float(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::f32: return f(float{});
    case DType::f64: return f(double{});
    default: KNOT_FAIL("{}: expected a f32 or f64 tensor, got {}", op, dtype_name(t));
  }
}

template <typename F>
decltype(auto) dispatch_index(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::i32: return f(int32_t{});
    case DType::i64: return f(int64_t{});
    default: KNOT_FAIL("{}: expected an i32 or i64 index tensor, got {}", op, dtype_name(t));
  }
}

template <typename F>
decltype(auto) dispatch_all(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::f32: return f(float{});
    case DType::f64: return f(double{});
    case DType::i32: return f(int32_t{});
    case DType::i64: return f(int64_t{});
    default: KNOT_FAIL("{}: dtype {} is not supported by this op", op, dtype_name(t));
  }
}

}  // namespace knot
