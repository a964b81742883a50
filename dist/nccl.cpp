// NCCL collectives bootstrapped over MPI (see nccl.h). Without NCCL (KNOT_HAS_NCCL=0) create()
// explains what the build lacks.
#include "dist/nccl.h"

#include <fmt/format.h>

#include <cstring>

#include "core/error.h"

#if KNOT_HAS_NCCL
#include <cuda_runtime.h>
#include <nccl.h>

namespace knot::cuda_detail {
cudaStream_t stream_for(int device, const char* op);  // kernels/cuda/common.cuh: knot's compute stream
}  // namespace knot::cuda_detail
#endif

namespace knot::dist {

#if KNOT_HAS_NCCL

namespace {

void check_nccl(ncclResult_t r, const char* what) {
  if (r == ncclSuccess) return;
  KNOT_FAIL("distributed (NCCL): {} failed: {} ({})", what, ncclGetErrorString(r), ncclGetLastError(nullptr));
}

void check_cuda(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  KNOT_FAIL("distributed (NCCL): {} failed: {}", what, cudaGetErrorString(e));
}

ncclDataType_t nccl_type(DType d) {
  switch (d) {
    case DType::f32: return ncclFloat32;
    case DType::f64: return ncclFloat64;
    default: KNOT_FAIL("distributed (NCCL): collectives on {} buffers are not supported (f32 and f64 are)", dtype_name(d));
  }
}

}  // namespace

struct NcclComm::Impl {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;    // the collectives' own stream
  cudaEvent_t ready = nullptr;      // compute stream -> collectives
  cudaEvent_t done = nullptr;       // collectives -> compute stream
  cudaStream_t compute = nullptr;   // knot's stream of this GPU
  void before() {                   // the collective sees everything queued before it
    check_cuda(cudaEventRecord(ready, compute), "cudaEventRecord");
    check_cuda(cudaStreamWaitEvent(stream, ready, 0), "cudaStreamWaitEvent");
  }
};

bool nccl_available() { return true; }

std::unique_ptr<NcclComm> NcclComm::create(const Comm& mpi) {
  int gpus = 0;
  if (cudaGetDeviceCount(&gpus) != cudaSuccess || gpus == 0)
    KNOT_FAIL("distributed (NCCL): rank {} sees no GPU (cudaGetDeviceCount: {})", mpi.rank(),
              cudaGetErrorString(cudaGetLastError()));
  std::unique_ptr<NcclComm> c(new NcclComm);
  c->impl_ = std::make_unique<Impl>();
  c->rank_ = mpi.rank();
  c->size_ = mpi.size();
  c->device_ = mpi.local_rank() % gpus;
  // Rank 0's unique id, to every rank over MPI.
  ncclUniqueId id{};
  if (mpi.rank() == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  const std::string bytes =
      mpi.broadcast(std::string(reinterpret_cast<const char*>(&id), sizeof id));
  KNOT_CHECK(bytes.size() == sizeof id, "distributed (NCCL): the unique id arrived with {} bytes", bytes.size());
  std::memcpy(&id, bytes.data(), sizeof id);
  Impl& m = *c->impl_;
  m.compute = cuda_detail::stream_for(c->device_, "NCCL");  // also makes the device current
  check_cuda(cudaStreamCreateWithFlags(&m.stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  check_cuda(cudaEventCreateWithFlags(&m.ready, cudaEventDisableTiming), "cudaEventCreate");
  check_cuda(cudaEventCreateWithFlags(&m.done, cudaEventDisableTiming), "cudaEventCreate");
  check_nccl(ncclCommInitRank(&m.comm, c->size_, id, c->rank_), "ncclCommInitRank");
  return c;
}

NcclComm::~NcclComm() {
  if (!impl_) return;
  if (impl_->stream) cudaStreamSynchronize(impl_->stream);
  if (impl_->comm) ncclCommDestroy(impl_->comm);
  if (impl_->ready) cudaEventDestroy(impl_->ready);
  if (impl_->done) cudaEventDestroy(impl_->done);
  if (impl_->stream) cudaStreamDestroy(impl_->stream);
}

std::string NcclComm::version() const {
  int v = 0;
  ncclGetVersion(&v);
  return fmt::format("NCCL {}.{}.{}", v / 10000, (v / 100) % 100, v % 100);
}

void NcclComm::all_reduce_sum(void* buf, int64_t count, DType dtype) {
  check_cuda(cudaSetDevice(device_), "cudaSetDevice");
  impl_->before();
  check_nccl(ncclAllReduce(buf, buf, static_cast<size_t>(count), nccl_type(dtype), ncclSum, impl_->comm, impl_->stream),
             "ncclAllReduce");
}

void NcclComm::reduce_scatter_sum(void* buf, int64_t block, DType dtype) {
  check_cuda(cudaSetDevice(device_), "cudaSetDevice");
  impl_->before();
  char* mine = static_cast<char*>(buf) + static_cast<size_t>(rank_) * static_cast<size_t>(block) * dtype_size(dtype);
  check_nccl(ncclReduceScatter(buf, mine, static_cast<size_t>(block), nccl_type(dtype), ncclSum, impl_->comm,
                               impl_->stream),
             "ncclReduceScatter");
}

void NcclComm::all_gather_blocks(void* buf, int64_t block, DType dtype) {
  check_cuda(cudaSetDevice(device_), "cudaSetDevice");
  impl_->before();
  const char* mine =
      static_cast<const char*>(buf) + static_cast<size_t>(rank_) * static_cast<size_t>(block) * dtype_size(dtype);
  check_nccl(ncclAllGather(mine, buf, static_cast<size_t>(block), nccl_type(dtype), impl_->comm, impl_->stream),
             "ncclAllGather");
}

void NcclComm::wait() {
  check_cuda(cudaEventRecord(impl_->done, impl_->stream), "cudaEventRecord");
  check_cuda(cudaStreamWaitEvent(impl_->compute, impl_->done, 0), "cudaStreamWaitEvent");
}

#else  // no NCCL in this build

struct NcclComm::Impl {};

bool nccl_available() { return false; }

std::unique_ptr<NcclComm> NcclComm::create(const Comm&) {
  KNOT_FAIL("distributed: this knot was built without NCCL (it needs the CUDA backend, MPI and nccl.h/libnccl.so from "
            "the CUDA toolkit at configure time)");
}

NcclComm::~NcclComm() = default;
std::string NcclComm::version() const { return "no NCCL"; }
void NcclComm::all_reduce_sum(void*, int64_t, DType) {}
void NcclComm::reduce_scatter_sum(void*, int64_t, DType) {}
void NcclComm::all_gather_blocks(void*, int64_t, DType) {}
void NcclComm::wait() {}

#endif

}  // namespace knot::dist
