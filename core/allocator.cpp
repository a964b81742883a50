// 64-byte aligned host allocator with live/peak counters; registry of device allocators.
//
// Why not plain std::aligned_alloc: a training step allocates and frees the same few hundred MB of
// activations and gradients every step. With glibc's defaults (i) every block above the mmap
// threshold (128 KiB, rising to at most 32 MiB) is a fresh mmap, and heap memory above the trim
// threshold goes back to the kernel on free, so each step page-faults all of it in again
// (seed-sized KAN kanformer: about 50,000 faults per second, a quarter of the CPU time in the
// kernel); and (ii) glibc 2.36's memalign path does not reuse freed chunks well, so once those
// blocks live on the heap, RSS kept growing. So: blocks come from plain malloc, 64 bytes larger,
// aligned by hand (the raw pointer sits just below the aligned one), and on first use malloc is
// told to keep freed memory for reuse (configure_host_malloc). Peak RSS stays at the peak of
// live bytes plus a little, and the faults are gone after the first step.
#include "core/allocator.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "core/error.h"
#include "core/shape.h"

namespace knot {
namespace {
std::atomic<size_t> g_live{0};
std::atomic<size_t> g_peak{0};
DeviceAllocator* g_cuda_allocator = nullptr;
constexpr size_t kAlign = 64;

// Serve blocks up to 1 GiB from the heap and never trim it: freed pages stay mapped and are
// reused by the next step. A user who sets glibc's own malloc tunables (GLIBC_TUNABLES with
// glibc.malloc.*, or the older MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ variables, which
// bench/compare_pytorch_train.py uses to make RSS follow the live buffers) keeps them, and
// cpu_release_cached_memory() hands the cache back.
bool configure_host_malloc() {
#if defined(__GLIBC__)
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables && std::strstr(tunables, "glibc.malloc.")) return false;
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") || std::getenv("MALLOC_TRIM_THRESHOLD_")) return false;
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  return true;
#else
  return false;
#endif
}
}  // namespace

bool cpu_alloc_keeps_freed_memory() {
  static const bool configured = configure_host_malloc();
  return configured;
}

void* cpu_alloc(size_t nbytes) {
  cpu_alloc_keeps_freed_memory();  // configures malloc on the first allocation
  if (nbytes == 0) nbytes = 1;  // a valid, unique pointer for empty tensors
  // The rounding below must not wrap around to a small block.
  KNOT_CHECK(nbytes <= SIZE_MAX - 2 * kAlign, "cpu_alloc: cannot allocate {} bytes ({}): larger than the address space",
             nbytes, bytes_str(nbytes));
  const size_t rounded = (nbytes + kAlign - 1) / kAlign * kAlign;
  // malloc returns 16-byte aligned memory, so the aligned pointer is 16..64 bytes past the raw
  // one and there is always room for the raw pointer just below it.
  char* raw = static_cast<char*>(std::malloc(rounded + kAlign));
  if (!raw)
    KNOT_FAIL("cpu_alloc: out of memory allocating {} bytes ({}; {} already live in tensors)", nbytes, bytes_str(nbytes),
              bytes_str(g_live.load()));
  char* aligned = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(raw) + kAlign) &
                                          ~static_cast<uintptr_t>(kAlign - 1));
  std::memcpy(aligned - sizeof(void*), &raw, sizeof(void*));
  const size_t live = g_live.fetch_add(nbytes) + nbytes;
  size_t peak = g_peak.load();
  while (live > peak && !g_peak.compare_exchange_weak(peak, live)) {}
  return aligned;
}

void cpu_free(void* p, size_t nbytes) {
  if (!p) return;
  if (nbytes == 0) nbytes = 1;
  void* raw;
  std::memcpy(&raw, static_cast<char*>(p) - sizeof(void*), sizeof(void*));
  std::free(raw);
  g_live.fetch_sub(nbytes);
}

size_t cpu_live_bytes() { return g_live.load(); }
size_t cpu_peak_bytes() { return g_peak.load(); }
void cpu_reset_peak() { g_peak.store(g_live.load()); }

void cpu_release_cached_memory() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

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
