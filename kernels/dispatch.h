// Device dispatch. Each op family lists its kernels once, as an X-macro of (return type, name,
// parameters) entries, and that one list declares them in namespace cpu and namespace cuda and
// defines the CUDA stubs; a dispatching function in knot::kernels picks one by the device of the
// first tensor argument:
//
//   #define KNOT_SOFTMAX_KERNELS(X) X(Tensor, logsumexp, (const Tensor& x, int dim))
//   namespace cpu  { KNOT_SOFTMAX_KERNELS(KNOT_DECLARE_KERNEL) }  // kernels/cpu/softmax.cpp defines them
//   namespace cuda { KNOT_SOFTMAX_KERNELS(KNOT_DECLARE_KERNEL) }  // kernels/cuda/softmax.cu, or the stubs
//   inline Tensor logsumexp(const Tensor& x, int dim) { return KNOT_DISPATCH(x, logsumexp(x, dim)); }
//
// This is a switch, not a virtual table: the set of devices is closed and small, and a branch per
// kernel launch costs nothing. When CUDA is not compiled in (or a family has no .cu yet), the cuda
// functions come from kernels/cuda_stub/<family>.cpp, one line that expands the family's list with
// KNOT_CUDA_STUB: each throws a named error. Default arguments live in the dispatchers only.
#pragma once

#include <vector>

#include "core/tensor.h"

#define KNOT_DISPATCH(t, call) ((t).is_cuda() ? ::knot::kernels::cuda::call : ::knot::kernels::cpu::call)

// An X-macro entry as a declaration, and as a CUDA stub that throws "<name>: CUDA ...".
#define KNOT_DECLARE_KERNEL(ret, name, params) ret name params;
#define KNOT_CUDA_STUB(ret, name, params) \
  ret name params { ::knot::kernels::cuda_unavailable(#name); }

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
