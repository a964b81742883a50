// GPU collectives for data-parallel ranks (docs/distributed.md, "GPUs"): NCCL, bootstrapped over
// MPI the way llm.c and Marian do it — rank 0 creates the ncclUniqueId, MPI broadcasts its bytes,
// every rank calls ncclCommInitRank on its GPU (local rank modulo the GPUs of its machine).
//
// The collectives run on the communicator's own stream, ordered after everything already queued on
// knot's compute stream of that GPU (an event), and wait() orders the compute stream after them, so
// a bucket can be reduced while backward keeps computing.
//
// Built when the CUDA backend, MPI and NCCL (nccl.h, libnccl.so from the CUDA toolkit) are all
// found (KNOT_HAS_NCCL); otherwise create() throws an error saying what the build lacks. Until GPU
// training exists (issue 15) nothing in the trainer calls this; tests/dist/nccl_check.cpp does.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/dtype.h"
#include "dist/comm.h"

namespace knot::dist {

// Whether this build has the NCCL path.
bool nccl_available();

class NcclComm {
 public:
  // Collective over `mpi`'s ranks; picks the GPU local_rank % (GPUs on this machine).
  static std::unique_ptr<NcclComm> create(const Comm& mpi);
  ~NcclComm();
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  int device() const { return device_; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  std::string version() const;  // "NCCL 2.28.9"

  // In place on device memory (`count` elements of f32 or f64), summing. Started on the
  // communicator's stream; call wait() before the compute stream reads the result.
  void all_reduce_sum(void* buf, int64_t count, DType dtype);
  // buf holds size() blocks of `block` elements; afterwards block rank() holds the sums of every
  // rank's block rank() (NCCL's in-place convention: the receive buffer is the rank's block).
  void reduce_scatter_sum(void* buf, int64_t block, DType dtype);
  // buf holds size() blocks of `block` elements; afterwards block r everywhere is rank r's block r.
  void all_gather_blocks(void* buf, int64_t block, DType dtype);
  // Orders knot's compute stream of this GPU after the collectives started so far.
  void wait();

 private:
  NcclComm() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int device_ = 0, rank_ = 0, size_ = 1;
};

}  // namespace knot::dist
