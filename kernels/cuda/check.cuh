// Error checks for CUDA runtime and cuBLAS calls. Each throws knot::Error naming the op, the call,
// the file:line and the library's own message, e.g.
//   "matmul: cublasGemmStridedBatchedEx(...) failed at kernels/cuda/linalg.cu:120: CUBLAS_STATUS_INVALID_VALUE"
// Device code never throws; kernel launches are checked with KNOT_CUDA_LAUNCH_CHECK(op) right after.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "core/error.h"

namespace knot::cuda_detail {

[[noreturn]] void throw_cuda_error(const char* op, const char* call, const char* file, int line, cudaError_t err);
[[noreturn]] void throw_cublas_error(const char* op, const char* call, const char* file, int line, cublasStatus_t st);
const char* cublas_status_name(cublasStatus_t st);

}  // namespace knot::cuda_detail

// CUDA_CHECK(cudaMemcpyAsync(...), "copy")
#define CUDA_CHECK(call, op)                                                                 \
  do {                                                                                       \
    const cudaError_t knot_err_ = (call);                                                    \
    if (knot_err_ != cudaSuccess) {                                                          \
      (void)cudaGetLastError(); /* clear the sticky-free error so the next call starts clean */ \
      ::knot::cuda_detail::throw_cuda_error(op, #call, __FILE__, __LINE__, knot_err_);       \
    }                                                                                        \
  } while (0)

#define CUBLAS_CHECK(call, op)                                                          \
  do {                                                                                  \
    const cublasStatus_t knot_st_ = (call);                                             \
    if (knot_st_ != CUBLAS_STATUS_SUCCESS)                                              \
      ::knot::cuda_detail::throw_cublas_error(op, #call, __FILE__, __LINE__, knot_st_); \
  } while (0)

// After a <<<...>>> launch: configuration errors show up here (execution errors at the next sync).
#define KNOT_CUDA_LAUNCH_CHECK(op) CUDA_CHECK(cudaGetLastError(), op)
