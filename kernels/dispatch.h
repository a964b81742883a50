// Device dispatch. Each op family declares its kernels twice, in namespace cpu and namespace cuda,
// with the same signatures, and a dispatching function in knot::kernels picks one by the device of
// the first tensor argument:
//
//   namespace cpu  { Tensor softmax(const Tensor& x, int dim); }   // kernels/cpu/softmax.cpp
//   namespace cuda { Tensor softmax(const Tensor& x, int dim); }   // kernels/cuda/softmax.cu, or the stub
//   inline Tensor softmax(const Tensor& x, int dim) { return KNOT_DISPATCH(x, softmax(x, dim)); }
//
// This is a switch, not a virtual table: the set of devices is closed and small, and a branch per
// kernel launch costs nothing. When CUDA is not compiled in (or a family has no .cu yet), the cuda
// functions come from kernels/cuda_stub/<family>.cpp and throw a named error.
#pragma once

#include <vector>

#include "core/tensor.h"

#define KNOT_DISPATCH(t, call) ((t).is_cuda() ? ::knot::kernels::cuda::call : ::knot::kernels::cpu::call)

namespace knot::kernels {

// The error a stub throws: "<op>: CUDA backend not compiled in" (or "no CUDA kernel yet").
[[noreturn]] void cuda_unavailable(const char* op);

// Inputs on different devices are an error, never a silent copy.
void check_same_device(const char* op, const Tensor& a, const Tensor& b);
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);

// Layout helpers for kernels of any backend. They record no autograd (a kernel's inputs are data):
// kernels use them rather than the differentiable knot::contiguous / knot::permute of ops/, a layer
// above (docs/architecture.md).
// t itself when contiguous, else a contiguous copy on t's own device.
Tensor dense(const Tensor& t);
// A view of t with its dims in `order` (a permutation of 0 .. t.dim()-1), sharing t's storage.
Tensor permuted(const Tensor& t, const std::vector<int64_t>& order);

}  // namespace knot::kernels
