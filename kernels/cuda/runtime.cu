// CUDA runtime of knot: device query, the per-device stream and cuBLAS handle, error formatting
// for CUDA_CHECK / CUBLAS_CHECK, and the caching device allocator (see kernels/cuda/runtime.h).
//
// Allocator: sizes round up to buckets (512 B steps below 1 MiB, 2 MiB steps above, so a bucket
// wastes at most 2 MiB on large blocks); each device keeps a free list per bucket. Every kernel of a
// device runs on its one stream, so a freed block may be handed out again immediately: the next
// user's work is queued after the previous user's. If cudaMalloc runs out of memory the cache is
// returned to the driver and the allocation retried once. The allocator object is never destroyed
// (tensors may be freed during static destruction, after the CUDA runtime has shut down), and it
// never calls CUDA on deallocate.
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/allocator.h"
#include "core/device.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/runtime.h"

namespace knot {
namespace cuda_detail {

const char* cublas_status_name(cublasStatus_t st) {
  switch (st) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "CUBLAS_STATUS_UNKNOWN";
  }
}

namespace {
// "/work/main/kernels/cuda/linalg.cu" -> "kernels/cuda/linalg.cu"
const char* short_path(const char* file) {
  const char* p = std::strstr(file, "kernels/");
  return p ? p : file;
}
}  // namespace

void throw_cuda_error(const char* op, const char* call, const char* file, int line, cudaError_t err) {
  throw Error(fmt::format("{}: {} failed at {}:{}: {} ({})", op, call, short_path(file), line,
                          cudaGetErrorString(err), cudaGetErrorName(err)));
}

void throw_cublas_error(const char* op, const char* call, const char* file, int line, cublasStatus_t st) {
  throw Error(fmt::format("{}: {} failed at {}:{}: {}", op, call, short_path(file), line, cublas_status_name(st)));
}

namespace {

// ---- device query (once per process) ----
struct DeviceQuery {
  int count = 0;
  std::string reason;  // why count is 0
};

const DeviceQuery& device_query() {
  static const DeviceQuery q = [] {
    DeviceQuery r;
    const cudaError_t err = cudaGetDeviceCount(&r.count);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      r.count = 0;
      r.reason = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(err);
    } else if (r.count == 0) {
      r.reason = "cudaGetDeviceCount: 0 devices";
    }
    return r;
  }();
  return q;
}

void require_device(int device, const char* op) {
  const DeviceQuery& q = device_query();
  if (q.count == 0) KNOT_FAIL("{}: no CUDA device is available ({})", op, q.reason);
  KNOT_CHECK(device >= 0 && device < q.count, "{}: cuda:{} does not exist ({} CUDA device{} visible)", op, device,
             q.count, q.count == 1 ? "" : "s");
}

// ---- per-device state ----
struct DeviceState {
  std::once_flag init;
  cudaStream_t stream = nullptr;
  int sm_count = 1;
  std::string name;
  std::mutex blas_mu;
  cublasHandle_t blas = nullptr;
  bool blas_tf32 = false;
};

constexpr int kMaxDevices = 64;
DeviceState* g_states = new DeviceState[kMaxDevices];  // never freed: see the file comment
bool g_allow_tf32 = false;

DeviceState& state(int device, const char* op) {
  require_device(device, op);
  KNOT_CHECK(device < kMaxDevices, "{}: cuda:{} is beyond the {} devices knot supports", op, device, kMaxDevices);
  DeviceState& s = g_states[device];
  std::call_once(s.init, [&] {
    CUDA_CHECK(cudaSetDevice(device), op);
    CUDA_CHECK(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking), op);
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, device), op);
    s.sm_count = prop.multiProcessorCount;
    s.name = fmt::format("{} (sm_{}{}, {} SMs, {:.1f} GiB)", prop.name, prop.major, prop.minor,
                         prop.multiProcessorCount, static_cast<double>(prop.totalGlobalMem) / (1ull << 30));
  });
  return s;
}

// ---- caching allocator ----
constexpr size_t kSmallLimit = size_t(1) << 20;
constexpr size_t kSmallStep = 512;
constexpr size_t kLargeStep = size_t(2) << 20;

size_t bucket_size(size_t nbytes) {
  if (nbytes == 0) nbytes = 1;
  const size_t step = nbytes < kSmallLimit ? kSmallStep : kLargeStep;
  return (nbytes + step - 1) / step * step;
}

struct Pool {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;  // bucket size -> blocks
  CudaMemoryStats stats;
};

class CachingAllocator final : public DeviceAllocator {
 public:
  void* allocate(size_t nbytes, int device) override {
    DeviceState& st = state(device, "alloc");
    (void)st;
    const size_t b = bucket_size(nbytes);
    Pool& pool = pools_[device];
    {
      std::lock_guard<std::mutex> lk(pool.mu);
      ++pool.stats.allocations;
      auto it = pool.free_blocks.find(b);
      if (it != pool.free_blocks.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        pool.stats.cached_bytes -= b;
        ++pool.stats.cache_hits;
        add_live(pool, b);
        return p;
      }
    }
    CUDA_CHECK(cudaSetDevice(device), "alloc");
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, b);
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      release_cached(device);
      err = cudaMalloc(&p, b);
    }
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      const CudaMemoryStats s = stats(device);
      KNOT_FAIL("alloc: cannot allocate {} bytes on cuda:{} (live {} bytes, cached {} bytes): cudaMalloc: {}", nbytes,
                device, s.live_bytes, s.cached_bytes, cudaGetErrorString(err));
    }
    std::lock_guard<std::mutex> lk(pool.mu);
    ++pool.stats.device_mallocs;
    pool.stats.reserved_bytes += b;
    add_live(pool, b);
    return p;
  }

  void deallocate(void* p, size_t nbytes, int device) override {
    if (!p || device < 0 || device >= kMaxDevices) return;
    const size_t b = bucket_size(nbytes);
    Pool& pool = pools_[device];
    std::lock_guard<std::mutex> lk(pool.mu);
    pool.free_blocks[b].push_back(p);
    pool.stats.live_bytes -= b;
    pool.stats.cached_bytes += b;
  }

  // Frees this device's cached blocks (after its stream has drained, so no kernel still uses one).
  void release_cached(int device) {
    Pool& pool = pools_[device];
    std::vector<void*> blocks;
    {
      std::lock_guard<std::mutex> lk(pool.mu);
      for (auto& [b, list] : pool.free_blocks) {
        for (void* p : list) blocks.push_back(p);
        pool.stats.reserved_bytes -= b * list.size();
        list.clear();
      }
      pool.stats.cached_bytes = 0;
    }
    if (blocks.empty()) return;
    CUDA_CHECK(cudaSetDevice(device), "empty_cache");
    if (g_states[device].stream) CUDA_CHECK(cudaStreamSynchronize(g_states[device].stream), "empty_cache");
    for (void* p : blocks) CUDA_CHECK(cudaFree(p), "empty_cache");
  }

  CudaMemoryStats stats(int device) {
    if (device < 0 || device >= kMaxDevices) return {};
    Pool& pool = pools_[device];
    std::lock_guard<std::mutex> lk(pool.mu);
    return pool.stats;
  }

  void reset_peak(int device) {
    if (device < 0 || device >= kMaxDevices) return;
    Pool& pool = pools_[device];
    std::lock_guard<std::mutex> lk(pool.mu);
    pool.stats.peak_bytes = pool.stats.live_bytes;
  }

 private:
  static void add_live(Pool& pool, size_t b) {
    pool.stats.live_bytes += b;
    if (pool.stats.live_bytes > pool.stats.peak_bytes) pool.stats.peak_bytes = pool.stats.live_bytes;
  }
  Pool* pools_ = new Pool[kMaxDevices];
};

CachingAllocator& allocator() {
  static CachingAllocator* a = new CachingAllocator();  // never destroyed
  return *a;
}

// Registers the allocator when this object file is linked in (any CUDA kernel references it).
// Registration costs nothing: the CUDA runtime is first touched by the first allocation.
void ensure_registered() {
  static const bool once = [] {
    register_device_allocator(DeviceType::CUDA, &allocator());
    return true;
  }();
  (void)once;
}
const struct Registrar {
  Registrar() { ensure_registered(); }
} g_registrar;

}  // namespace

cudaStream_t stream_for(int device, const char* op) {
  ensure_registered();
  DeviceState& s = state(device, op);
  int cur = -1;
  CUDA_CHECK(cudaGetDevice(&cur), op);
  if (cur != device) CUDA_CHECK(cudaSetDevice(device), op);
  return s.stream;
}

cublasHandle_t cublas_for(int device, const char* op) {
  const cudaStream_t stream = stream_for(device, op);
  DeviceState& s = g_states[device];
  std::lock_guard<std::mutex> lk(s.blas_mu);
  if (!s.blas) {
    CUBLAS_CHECK(cublasCreate(&s.blas), op);
    CUBLAS_CHECK(cublasSetStream(s.blas, stream), op);
    CUBLAS_CHECK(cublasSetMathMode(s.blas, CUBLAS_DEFAULT_MATH), op);
    s.blas_tf32 = false;
  }
  if (s.blas_tf32 != g_allow_tf32) {
    CUBLAS_CHECK(cublasSetMathMode(s.blas, g_allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH), op);
    s.blas_tf32 = g_allow_tf32;
  }
  return s.blas;
}

void sync_stream(int device, const char* op) { CUDA_CHECK(cudaStreamSynchronize(stream_for(device, op)), op); }

// Through state(): the count is read from the device on first use, whichever call comes first
// (static review #9: reading g_states directly gave the default 1 before any stream_for).
int multiprocessor_count(int device) { return state(device, "multiprocessor_count").sm_count; }

Tensor zeros_on(const Shape& s, DType t, Device d, const char* op) {
  Tensor z = empty(s, t, d);
  if (z.nbytes() > 0) CUDA_CHECK(cudaMemsetAsync(z.raw_data(), 0, z.nbytes(), stream_for(d.index, op)), op);
  return z;
}

}  // namespace cuda_detail

// ---- public API (core/device.h, kernels/cuda/runtime.h) ----

bool cuda_available() { return cuda_device_count() > 0; }

int cuda_device_count() {
  cuda_detail::ensure_registered();
  return cuda_detail::device_query().count;
}

const char* cuda_unavailable_reason() { return cuda_detail::device_query().reason.c_str(); }

const char* cuda_device_name(int device) {
  if (device < 0 || device >= cuda_device_count()) return "";
  return cuda_detail::state(device, "cuda_device_name").name.c_str();
}

CudaMemoryStats cuda_memory_stats(int device) { return cuda_detail::allocator().stats(device); }
void cuda_reset_peak(int device) { cuda_detail::allocator().reset_peak(device); }

void cuda_empty_cache() {
  const int n = cuda_device_count();
  for (int d = 0; d < n; ++d) cuda_detail::allocator().release_cached(d);
}

void cuda_synchronize(int device) { cuda_detail::sync_stream(device, "cuda_synchronize"); }

void cuda_set_allow_tf32(bool on) { cuda_detail::g_allow_tf32 = on; }
bool cuda_allow_tf32() { return cuda_detail::g_allow_tf32; }

}  // namespace knot
