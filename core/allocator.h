// Host memory: 64-byte aligned (one cache line, one AVX-512 vector), kept in malloc's heap for
// reuse between steps, with live/peak byte counters,
// so tests can check that memory returns to its baseline after backward.
// Device allocators (CUDA) register themselves here; without one, asking for device memory throws.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/device.h"

namespace knot {

struct DeviceAllocator {
  virtual ~DeviceAllocator() = default;
  virtual void* allocate(size_t nbytes, int device_index) = 0;
  virtual void deallocate(void* p, size_t nbytes, int device_index) = 0;
};

void* cpu_alloc(size_t nbytes);
void cpu_free(void* p, size_t nbytes);
size_t cpu_live_bytes();
size_t cpu_peak_bytes();
void cpu_reset_peak();
// Freed host blocks stay in malloc's heap for reuse (see allocator.cpp); this returns the unused
// part to the operating system, e.g. after training, before a long idle phase.
void cpu_release_cached_memory();
// Whether malloc was told to keep freed blocks (false when the environment sets glibc's malloc
// options, which are then left alone, or off glibc).
bool cpu_alloc_keeps_freed_memory();

// Allocation for any device; CUDA goes through the registered allocator.
void* device_alloc(size_t nbytes, Device d);
void device_free(void* p, size_t nbytes, Device d);
void register_device_allocator(DeviceType t, DeviceAllocator* a);

}  // namespace knot
