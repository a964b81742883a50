// Public CUDA runtime API of knot, usable from plain C++ (.cpp) files of a CUDA build
// (KNOT_HAS_CUDA defined). In a CPU-only build these functions do not exist; guard uses with
// #ifdef KNOT_HAS_CUDA. Device query (cuda_available, cuda_device_count) is in core/device.h.
//
// Memory: device tensors are served by a caching allocator (kernels/cuda/runtime.cu). Requests are
// rounded to size buckets (512 B steps below 1 MiB, 2 MiB steps above); a freed block goes back to
// its bucket's free list and is reused by the next request of that bucket. All kernels of a device
// run on one stream, so a block freed by the host can be handed out again at once: any later use is
// ordered after the earlier kernels on that stream.
#pragma once

#include <cstddef>
#include <cstdint>

namespace knot {

struct CudaMemoryStats {
  size_t live_bytes = 0;      // bytes in blocks handed out to tensors (bucket-rounded)
  size_t peak_bytes = 0;      // maximum of live_bytes since start or the last reset
  size_t cached_bytes = 0;    // bytes in free blocks kept for reuse
  size_t reserved_bytes = 0;  // live + cached: everything obtained from cudaMalloc
  uint64_t allocations = 0;   // requests served
  uint64_t cache_hits = 0;    // requests served from a free block
  uint64_t device_mallocs = 0;  // requests that needed cudaMalloc
};

CudaMemoryStats cuda_memory_stats(int device = 0);
void cuda_reset_peak(int device = 0);
// Returns every cached (free) block of every device to the driver; live blocks are untouched.
void cuda_empty_cache();
// Waits for all work queued on the device's stream.
void cuda_synchronize(int device = 0);
// Why CUDA is unavailable ("" when a device is visible), e.g. "cudaGetDeviceCount: no CUDA-capable
// device is detected".
const char* cuda_unavailable_reason();
// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB)" or "" when there is no such device.
const char* cuda_device_name(int device = 0);

// TF32 tensor-core math for f32 matmul (10-bit mantissa products, ~3e-4 relative error). Off by
// default; f32 GEMMs then use full f32 arithmetic.
void cuda_set_allow_tf32(bool on);
bool cuda_allow_tf32();

}  // namespace knot
