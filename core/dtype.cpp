// DType parsing and Device parsing.
#include "core/dtype.h"

#include "core/device.h"
#include "core/error.h"

namespace knot {

DType dtype_from_string(const std::string& s) {
  if (s == "f32" || s == "float32" || s == "float") return DType::f32;
  if (s == "f64" || s == "float64" || s == "double") return DType::f64;
  if (s == "i32" || s == "int32") return DType::i32;
  if (s == "i64" || s == "int64") return DType::i64;
  if (s == "bf16" || s == "bfloat16") return DType::bf16;
  if (s == "f16" || s == "float16") return DType::f16;
  KNOT_FAIL("dtype: unknown dtype '{}' (expected f32, f64, i32, i64, bf16 or f16)", s);
}

Device Device::parse(const std::string& s) {
  if (s == "cpu") return Device::cpu();
  if (s == "cuda") return Device::cuda(0);
  if (s.rfind("cuda:", 0) == 0) {
    const std::string idx = s.substr(5);
    KNOT_CHECK(!idx.empty() && idx.find_first_not_of("0123456789") == std::string::npos,
               "device: bad device '{}' (expected cpu, cuda or cuda:N)", s);
    return Device::cuda(std::stoi(idx));
  }
  KNOT_FAIL("device: unknown device '{}' (expected cpu, cuda or cuda:N)", s);
}

}  // namespace knot
