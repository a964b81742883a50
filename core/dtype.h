// Element types. f32/f64 are the float types every op supports; i32/i64 hold indices and token
// ids; bf16/f16 are reserved for mixed precision (storage only for now).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace knot {

enum class DType : uint8_t { f32, f64, i32, i64, bf16, f16 };

constexpr size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::i32: return 4;
    case DType::i64: return 8;
    case DType::bf16: return 2;
    case DType::f16: return 2;
  }
  return 0;
}

constexpr const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f64: return "f64";
    case DType::i32: return "i32";
    case DType::i64: return "i64";
    case DType::bf16: return "bf16";
    case DType::f16: return "f16";
  }
  return "?";
}

constexpr bool is_floating(DType t) { return t == DType::f32 || t == DType::f64 || t == DType::bf16 || t == DType::f16; }
constexpr bool is_integral(DType t) { return t == DType::i32 || t == DType::i64; }

// Parses "f32", "float32", "f64", "float64", "i32", "int32", "i64", "int64"; throws otherwise.
DType dtype_from_string(const std::string& s);

// C++ type -> DType.
template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };

}  // namespace knot
