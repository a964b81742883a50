// 64-byte aligned host allocator with live/peak counters; registry of device allocators.
#include "core/allocator.h"

#include <atomic>
#include <cstdlib>
#include <new>

#include "core/error.h"

namespace knot {
namespace {
std::atomic<size_t> g_live{0};
std::atomic<size_t> g_peak{0};
DeviceAllocator* g_cuda_allocator = nullptr;
constexpr size_t kAlign = 64;
}  // namespace

void* cpu_alloc(size_t nbytes) {
  if (nbytes == 0) nbytes = 1;  // a valid, unique pointer for empty tensors
  const size_t rounded = (nbytes + kAlign - 1) / kAlign * kAlign;
  void* p = std::aligned_alloc(kAlign, rounded);
  if (!p) KNOT_FAIL("cpu_alloc: out of memory allocating {} bytes", nbytes);
  const size_t live = g_live.fetch_add(nbytes) + nbytes;
  size_t peak = g_peak.load();
  while (live > peak && !g_peak.compare_exchange_weak(peak, live)) {}
  return p;
}

void cpu_free(void* p, size_t nbytes) {
  if (!p) return;
  if (nbytes == 0) nbytes = 1;
  std::free(p);
  g_live.fetch_sub(nbytes);
}

size_t cpu_live_bytes() { return g_live.load(); }
size_t cpu_peak_bytes() { return g_peak.load(); }
void cpu_reset_peak() { g_peak.store(g_live.load()); }

void register_device_allocator(DeviceType t, DeviceAllocator* a) {
  if (t == DeviceType::CUDA) g_cuda_allocator = a;
}

void* device_alloc(size_t nbytes, Device d) {
  if (d.is_cpu()) return cpu_alloc(nbytes);
  KNOT_CHECK(g_cuda_allocator != nullptr,
             "alloc: cannot allocate on {}: the CUDA backend is not compiled in or no GPU is present",
             d.str());
  return g_cuda_allocator->allocate(nbytes, d.index);
}

void device_free(void* p, size_t nbytes, Device d) {
  if (d.is_cpu()) return cpu_free(p, nbytes);
  if (g_cuda_allocator) g_cuda_allocator->deallocate(p, nbytes, d.index);
}

}  // namespace knot
