// CUDA GEMM through cuBLAS (see kernels/linalg.h).
//
// cuBLAS is column-major; a row-major matrix X (r × c, row stride ld) is, read column-major, Xᵀ
// (c × r, leading dim ld). So the row-major C = op(A)·op(B) (M × N) is computed as the
// column-major Cᵀ = op(B)ᵀ·op(A)ᵀ (N × M, ldc = N): pass B first, A second, swap M and N.
// A transposed view (inner stride ≠ 1 but outer stride 1) is the same memory read the other way,
// so it becomes a flipped transpose flag instead of a copy; only operands with no unit stride in
// either matrix dim are made contiguous first.
// Batches: when each operand's batch offsets are a single stride (contiguous batch dims, or
// broadcast along all of them: stride 0), one cublasGemmStridedBatchedEx call does them all;
// otherwise one cublasGemmEx per batch.
// f32 uses full f32 arithmetic unless cuda_set_allow_tf32(true) (kernels/cuda/runtime.h).
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/runtime.h"
#include "kernels/elementwise.h"
#include "kernels/linalg.h"

namespace knot::kernels::cuda {
namespace {

using namespace knot::cuda_detail;

// How cuBLAS reads one operand: as row-major with leading dim `ld`, or (`flipped`) as the
// transpose of a row-major matrix, i.e. column-major.
struct Operand {
  Tensor t;         // possibly a contiguous copy
  int64_t ld = 0;   // leading dimension in elements
  bool flipped = false;
};

// rows × cols are the stored (pre-transpose-flag) matrix dims of t's last two dims.
Operand describe(const Tensor& t_in) {
  Operand o{t_in};
  for (int attempt = 0; attempt < 2; ++attempt) {
    const Tensor t = o.t;  // a handle: o.t is replaced below
    const int64_t rows = t.size(-2), cols = t.size(-1), sr = t.stride(-2), sc = t.stride(-1);
    if (sc == 1 || cols == 1) {  // row-major
      const int64_t ld = rows == 1 ? std::max<int64_t>(cols, 1) : sr;
      if (ld >= std::max<int64_t>(cols, 1)) {
        o.ld = ld;
        o.flipped = false;
        return o;
      }
    }
    if (sr == 1 || rows == 1) {  // column-major: the transpose of a row-major (cols × rows)
      const int64_t ld = cols == 1 ? std::max<int64_t>(rows, 1) : sc;
      if (ld >= std::max<int64_t>(rows, 1)) {
        o.ld = ld;
        o.flipped = true;
        return o;
      }
    }
    o.t = empty(t.shape(), t.dtype(), t.device());
    kernels::cuda::copy(o.t, t);
  }
  KNOT_FAIL("matmul: internal error: no cuBLAS layout for a contiguous operand {}", shape_str(o.t.shape()));
}

// The single stride s with offset(b) = b·s for every flat batch index b, if there is one.
bool uniform_batch_stride(const Shape& batch, const Shape& bs, int64_t* s) {
  bool all_zero = true;
  for (int64_t v : bs) all_zero &= v == 0;
  if (all_zero) {
    *s = 0;
    return true;
  }
  int64_t inner = 1;
  int64_t unit = -1;
  for (int d = static_cast<int>(batch.size()) - 1; d >= 0; --d) {
    if (batch[d] != 1) {
      if (unit < 0) {
        if (bs[d] % inner != 0) return false;
        unit = bs[d] / inner;
      }
      if (bs[d] != unit * inner) return false;
    }
    inner *= batch[d];
  }
  *s = unit < 0 ? 0 : unit;
  return true;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const GemmShape g = gemm_shape(a, b, ta, tb);
  const int64_t M = g.M, N = g.N, Ka = g.K, nb = g.batches;
  const Shape& batch = g.batch;
  const Shape& out_shape = g.out_shape;
  const DType dt = a.dtype();
  KNOT_CHECK(dt == DType::f32 || dt == DType::f64, "matmul: expected a f32 or f64 tensor, got {}", dtype_name(dt));
  if (M == 0 || N == 0 || nb == 0) return empty(out_shape, dt, a.device());
  if (Ka == 0) return zeros_on(out_shape, dt, a.device(), "matmul");
  Tensor out = empty(out_shape, dt, a.device());

  const Operand A = describe(a), B = describe(b);
  const Shape as = gemm_batch_strides(A.t, batch), bs = gemm_batch_strides(B.t, batch);
  const int dev = a.device().index;
  cublasHandle_t h = cublas_for(dev, "matmul");
  // Column-major call: C' (N × M) = op_b(B)ᵀ · op_a(A)ᵀ. cuBLAS reads a row-major operand as its
  // transpose, so it needs no transpose exactly when the op layer asked for none (op_b(B)ᵀ = Bᵀ);
  // a flipped (column-major) operand is read as itself, so there the answer inverts.
  const cublasOperation_t opB = (tb == B.flipped) ? CUBLAS_OP_N : CUBLAS_OP_T;
  const cublasOperation_t opA = (ta == A.flipped) ? CUBLAS_OP_N : CUBLAS_OP_T;

  const bool f32 = dt == DType::f32;
  const cudaDataType_t ctype = f32 ? CUDA_R_32F : CUDA_R_64F;
  const cublasComputeType_t compute =
      f32 ? (cuda_allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F) : CUBLAS_COMPUTE_64F;
  const float one_f = 1.0f, zero_f = 0.0f;
  const double one_d = 1.0, zero_d = 0.0;
  const void* alpha = f32 ? static_cast<const void*>(&one_f) : static_cast<const void*>(&one_d);
  const void* beta = f32 ? static_cast<const void*>(&zero_f) : static_cast<const void*>(&zero_d);
  const size_t es = dtype_size(dt);
  const char* pa = static_cast<const char*>(A.t.storage()->data) + A.t.offset() * es;
  const char* pb = static_cast<const char*>(B.t.storage()->data) + B.t.offset() * es;
  char* pc = static_cast<char*>(out.raw_data());
  KNOT_CHECK(M <= INT32_MAX && N <= INT32_MAX && Ka <= INT32_MAX && A.ld <= INT32_MAX && B.ld <= INT32_MAX,
             "matmul: dims beyond cuBLAS's 32-bit limit: {} x {}", shape_str(a.shape()), shape_str(b.shape()));
  const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(Ka);
  const int lda = static_cast<int>(B.ld), ldb = static_cast<int>(A.ld), ldc = static_cast<int>(N);

  int64_t sa = 0, sb = 0;
  if (nb <= INT32_MAX && uniform_batch_stride(batch, as, &sa) && uniform_batch_stride(batch, bs, &sb)) {
    CUBLAS_CHECK(cublasGemmStridedBatchedEx(h, opB, opA, m, n, k, alpha, pb, ctype, lda, sb, pa, ctype, ldb, sa, beta,
                                            pc, ctype, ldc, M * N, static_cast<int>(nb), compute,
                                            CUBLAS_GEMM_DEFAULT),
                 "matmul");
  } else {
    for (int64_t i = 0; i < nb; ++i) {
      const char* ai = pa + gemm_batch_offset(i, batch, as) * static_cast<int64_t>(es);
      const char* bi = pb + gemm_batch_offset(i, batch, bs) * static_cast<int64_t>(es);
      CUBLAS_CHECK(cublasGemmEx(h, opB, opA, m, n, k, alpha, bi, ctype, lda, ai, ctype, ldb, beta,
                                pc + i * M * N * static_cast<int64_t>(es), ctype, ldc, compute, CUBLAS_GEMM_DEFAULT),
                   "matmul");
    }
  }
  return out;
}

}  // namespace knot::kernels::cuda
