// KNOT_HD marks per-element math that both the CPU loops and the CUDA kernels call.
// Under nvcc it expands to __host__ __device__; for the host compiler it is empty, so the same
// inline function is compiled and unit-tested on a machine without a GPU.
#pragma once

#if defined(__CUDACC__)
#define KNOT_HD __host__ __device__ __forceinline__
#else
#define KNOT_HD inline
#endif
