// GEMM kernels. a: (..., M, K) [or (..., K, M) if trans_a], b: (..., K, N) [or (..., N, K) if
// trans_b], both at least 2-D with broadcasting batch dims -> out (..., M, N) contiguous.
// Any strides are accepted: transposed views are read in place, not copied.
#pragma once

#include <string>

#include "kernels/dispatch.h"

namespace knot {

// The precision of f32 GEMMs on the CPU, like torch.set_float32_matmul_precision:
//   highest  f32 products and sums (the default);
//   bf16     operands rounded to bfloat16, products summed in f32, f32 result: Intel AMX / AVX512-BF16
//            through oneDNN, ~5-10x the f32 GEMM speed on a CPU that has them. Applies to the GEMMs
//            oneDNN runs (every Linear / KANLinear projection); f64, attention's per-head GEMMs and
//            CUDA are unaffected. On a CPU without bf16 support it warns once and stays f32.
// Start-up value: the KNOT_MATMUL_PRECISION environment variable; `knot train` sets it from
// train.matmul_precision.
enum class MatmulPrecision : uint8_t { highest, bf16 };
MatmulPrecision parse_matmul_precision(const std::string& s);  // "highest" (or "f32") | "bf16"
const char* matmul_precision_name(MatmulPrecision p);
void set_matmul_precision(MatmulPrecision p);
MatmulPrecision matmul_precision();
// Whether this build runs its f32 GEMMs through oneDNN (CMake KNOT_ONEDNN); without it every GEMM
// is Eigen's and the bf16 precision has no effect.
bool onednn_available();

}  // namespace knot

namespace knot::kernels {

// The shape of a (batched) GEMM, checked once for every backend: the kernel-level checks and the
// batch broadcasting rules live here, the backends only multiply.
struct GemmShape {
  int64_t M = 0, N = 0, K = 0;
  Shape batch;          // broadcast batch dims
  Shape out_shape;      // batch + (M, N)
  int64_t batches = 1;  // numel(batch)
};
GemmShape gemm_shape(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b);
// Strides of t's batch dims aligned to `batch` (0 where t broadcasts).
Shape gemm_batch_strides(const Tensor& t, const Shape& batch);
// Element offset of flat (row-major) batch index i.
int64_t gemm_batch_offset(int64_t i, const Shape& batch, const Shape& strides);

#define KNOT_LINALG_KERNELS \
  Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b);

namespace cpu { KNOT_LINALG_KERNELS }
namespace cuda { KNOT_LINALG_KERNELS }

inline Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  check_same_device("matmul", a, b);
  check_same_dtype("matmul", a, b);
  return KNOT_DISPATCH(a, matmul(a, b, trans_a, trans_b));
}

}  // namespace knot::kernels
