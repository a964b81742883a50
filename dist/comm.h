// The processes of a data-parallel run (docs/distributed.md): who is who, and the collectives
// the trainer needs, over MPI.
//
// knot never starts processes itself: a launcher that clusters already have does (`mpirun -np N`,
// `srun`), and `init()` joins the job it started. Started without a launcher, knot is one process
// and nothing here talks to MPI (world() has rank 0 of size 1; every collective is the identity).
// A build without MPI (CMake KNOT_MPI=OFF, or no libopenmpi-dev) that finds itself started as one
// of several ranks stops with an error saying so, instead of N copies training N separate models.
//
// Determinism: the small reductions (loss sums, gradient norms, token counts) gather every rank's
// value and add them in rank order, so every rank gets the same bits. Gradient buckets go through
// MPI's allreduce / reduce-scatter / all-gather; the trainer compares a hash of the parameters
// across ranks at every checkpoint (and every train.dp_check_every steps), so a rank that drifted is
// an error, not a silent second model.
//
// Failure: a rank that throws prints its error and calls abort(), which ends every rank of the job
// (MPI_Abort), so no rank waits forever in a collective; a rank killed from outside makes the
// launcher end the others. Checkpoints are written atomically by rank 0 only, so the last good one
// stays loadable.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace knot::dist {

// Whether this build can run several ranks (MPI found at configure time).
bool mpi_available();

// The world size a launcher announced in the environment (OMPI_COMM_WORLD_SIZE, PMI_SIZE,
// SLURM_STEP_NUM_TASKS), 1 when none did.
int launcher_world_size();

// Joins the launcher's job when there is one (MPI_Init_thread, funneled: only the main thread calls
// MPI), and sets each rank's default CPU thread count to its share of the machine (the hardware
// threads / the ranks on this machine) unless KNOT_NUM_THREADS says otherwise. Without a launcher it
// does nothing. A build without MPI started as one of several ranks throws an error saying so.
void init(int* argc, char*** argv);
// MPI_Finalize when init joined a job (call once, at normal exit).
void finalize();
// Ends every rank of the job now with `code` (MPI_Abort); a plain exit without a job.
[[noreturn]] void abort_job(int code);

// An operation in flight (a nonblocking collective).
class Request {
 public:
  Request() = default;
  ~Request();
  Request(Request&& o) noexcept;
  Request& operator=(Request&& o) noexcept;
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;
  bool pending() const { return handle_ != nullptr; }
  // Drives MPI's progress; true once the operation has finished (then the request is empty).
  bool test();
  // Blocks until the operation has finished.
  void wait();

 private:
  friend class Comm;
  void* handle_ = nullptr;  // an MPI_Request, owned
};

class Comm {
 public:
  // The job's ranks (rank 0 of 1 without a launcher).
  static Comm& world();

  int rank() const { return rank_; }
  int size() const { return size_; }
  int local_rank() const { return local_rank_; }  // among the ranks on this machine
  int local_size() const { return local_size_; }
  bool distributed() const { return size_ > 1; }

  // Each rank's `v`, added in rank order: the same bits on every rank.
  std::vector<double> sum(const std::vector<double>& v) const;
  double sum(double v) const { return sum(std::vector<double>{v})[0]; }
  // Every rank's string, in rank order.
  std::vector<std::string> all_gather(const std::string& s) const;
  // Root's value on every rank.
  std::string broadcast(const std::string& s, int root = 0) const;
  bool broadcast(bool v, int root = 0) const;  // sleeps while it waits, as idle_barrier
  // A barrier that sleeps while it waits (a rank waiting for rank 0's validation or checkpoint
  // does not spin a core that the other ranks of this machine need).
  void idle_barrier() const;

  // Nonblocking collectives on a raw buffer of `count` elements of `dtype` (f32 or f64), summing.
  // Every rank must start the same operations in the same order.
  Request all_reduce_sum(void* buf, int64_t count, DType dtype) const;
  // buf holds size() equal blocks of `block` elements; afterwards the *first* block of buf holds the
  // sum of every rank's block rank() (MPI's in-place convention; the rest of buf is undefined).
  Request reduce_scatter_sum(void* buf, int64_t block, DType dtype) const;
  // buf holds size() blocks of `block` elements; afterwards every rank's block r is rank r's block r.
  Request all_gather_blocks(void* buf, int64_t block, DType dtype) const;
  // Gathers `count` elements of each rank into root's `out` (rank order; out may be null elsewhere).
  void gather(const void* in, int64_t count, void* out, DType dtype, int root = 0) const;
  void gather_v(const void* in, int64_t count, void* out, const std::vector<int64_t>& counts, DType dtype,
                int root = 0) const;

 private:
  Comm() = default;
  friend void init(int*, char***);
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
};

// Checks that every rank runs the same binary with the same resolved config (SHA-256 of each,
// compared across ranks); a difference is an error naming the ranks and what differs. Collective.
void check_same_job(const Comm& comm, const std::string& config_text);

// The rows of a global batch of `rows` rows that rank `rank` of `world` takes: [begin, end), the
// even split (the first ranks get one more row when `rows` does not divide; a rank may get none).
struct RowRange {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};
RowRange shard_rows(int64_t rows, int rank, int world);

}  // namespace knot::dist
