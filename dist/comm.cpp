// The processes of a data-parallel run over MPI (see comm.h). Built with or without MPI: without it
// (KNOT_HAS_MPI=0) world() is always one rank, and being started as one of several is an error.
#include "dist/comm.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>

#include "core/error.h"
#include "data/prepare.h"  // sha256_hex
#include "core/runtime.h"

#if KNOT_HAS_MPI
#include <mpi.h>
#endif

namespace knot::dist {

namespace {

bool g_joined = false;  // init() called MPI_Init_thread

int env_int(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return -1;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  return (end && *end == '\0' && x > 0 && x < (1L << 30)) ? static_cast<int>(x) : -1;
}

#if KNOT_HAS_MPI
MPI_Datatype mpi_type(DType d) {
  switch (d) {
    case DType::f32: return MPI_FLOAT;
    case DType::f64: return MPI_DOUBLE;
    default: KNOT_FAIL("distributed: collectives on {} tensors are not supported (f32 and f64 are)", dtype_name(d));
  }
}

int count_int(int64_t n, const char* what) {
  KNOT_CHECK(n >= 0 && n <= INT32_MAX, "distributed: {} of {} elements is more than one MPI call takes (2^31 - 1)",
             what, n);
  return static_cast<int>(n);
}

void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  KNOT_FAIL("distributed: {} failed: {}", what, std::string(msg, static_cast<size_t>(len)));
}

void sleep_us(long us) {
  timespec ts{0, us * 1000};
  nanosleep(&ts, nullptr);
}

// Starts a nonblocking collective: start(r) calls MPI with the request r and returns MPI's code. The
// returned MPI_Request is owned by a Request (Request::handle_).
template <typename F>
void* start_request(const char* what, F start) {
  auto r = std::make_unique<MPI_Request>();
  check_mpi(start(r.get()), what);
  return r.release();
}

// Waits for `req` while sleeping between polls (for waits that may be long: another rank's
// validation or checkpoint), instead of MPI_Wait's busy poll.
void idle_wait(MPI_Request* req) {
  int done = 0;
  long us = 20;
  while (true) {
    check_mpi(MPI_Test(req, &done, MPI_STATUS_IGNORE), "MPI_Test");
    if (done) return;
    sleep_us(us);
    us = std::min(us * 2, 2000L);
  }
}
#endif

}  // namespace

bool mpi_available() { return KNOT_HAS_MPI != 0; }

int launcher_world_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"}) {
    const int n = env_int(name);
    if (n > 0) return n;
  }
  return 1;
}

Comm& Comm::world() {
  static Comm c;
  return c;
}

void init(int* argc, char*** argv) {
  const int announced = launcher_world_size();
  if (announced <= 1) return;  // one process: nothing to join
#if KNOT_HAS_MPI
  int provided = 0;
  check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  g_joined = true;
  KNOT_CHECK(provided >= MPI_THREAD_FUNNELED, "distributed: this MPI library gives thread level {} (funneled needed)",
             provided);
  Comm& w = Comm::world();
  MPI_Comm_rank(MPI_COMM_WORLD, &w.rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &w.size_);
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, w.rank_, MPI_INFO_NULL, &local);
  MPI_Comm_rank(local, &w.local_rank_);
  MPI_Comm_size(local, &w.local_size_);
  MPI_Comm_free(&local);
  // Each rank's share of this machine's cores, unless KNOT_NUM_THREADS (which init_threads reads
  // and apply_thread_setting honours) or train.threads says otherwise.
  if (!std::getenv("KNOT_NUM_THREADS")) {
    const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    set_num_threads(std::max(1, hw / std::max(1, w.local_size_)));
  }
#else
  (void)argc;
  (void)argv;
  KNOT_FAIL("this knot was built without MPI, but the launcher started it as one of {} ranks: every rank would train "
            "its own model. Install libopenmpi-dev and rebuild (CMake KNOT_MPI=AUTO or ON; scripts/install-deps.sh "
            "installs it), or start one process without mpirun/srun",
            announced);
#endif
}

void finalize() {
#if KNOT_HAS_MPI
  if (g_joined) {
    g_joined = false;
    MPI_Finalize();
  }
#endif
}

void abort_job(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
#if KNOT_HAS_MPI
  if (g_joined) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::_Exit(code);
}

// ---- requests ------------------------------------------------------------------------------------

Request::~Request() {
#if KNOT_HAS_MPI
  if (handle_) {  // an operation abandoned in flight (an exception): wait so MPI does not write freed memory
    auto* r = static_cast<MPI_Request*>(handle_);
    MPI_Wait(r, MPI_STATUS_IGNORE);
    delete r;
  }
#endif
}

Request::Request(Request&& o) noexcept : handle_(o.handle_) { o.handle_ = nullptr; }

Request& Request::operator=(Request&& o) noexcept {
  if (this != &o) {
    this->~Request();
    handle_ = o.handle_;
    o.handle_ = nullptr;
  }
  return *this;
}

bool Request::test() {
  if (!handle_) return true;
#if KNOT_HAS_MPI
  auto* r = static_cast<MPI_Request*>(handle_);
  int done = 0;
  check_mpi(MPI_Test(r, &done, MPI_STATUS_IGNORE), "MPI_Test");
  if (!done) return false;
  delete r;
  handle_ = nullptr;
#endif
  return true;
}

void Request::wait() {
  if (!handle_) return;
#if KNOT_HAS_MPI
  auto* r = static_cast<MPI_Request*>(handle_);
  check_mpi(MPI_Wait(r, MPI_STATUS_IGNORE), "MPI_Wait");
  delete r;
  handle_ = nullptr;
#endif
}

// ---- collectives ---------------------------------------------------------------------------------

std::vector<double> Comm::sum(const std::vector<double>& v) const {
  if (size_ == 1) return v;
#if KNOT_HAS_MPI
  const int n = count_int(static_cast<int64_t>(v.size()), "a sum");
  std::vector<double> all(v.size() * static_cast<size_t>(size_));
  check_mpi(MPI_Allgather(v.data(), n, MPI_DOUBLE, all.data(), n, MPI_DOUBLE, MPI_COMM_WORLD), "MPI_Allgather");
  std::vector<double> out(v.size(), 0.0);
  for (int r = 0; r < size_; ++r)
    for (size_t i = 0; i < v.size(); ++i) out[i] += all[static_cast<size_t>(r) * v.size() + i];
  return out;
#else
  return v;
#endif
}

std::vector<std::string> Comm::all_gather(const std::string& s) const {
  if (size_ == 1) return {s};
#if KNOT_HAS_MPI
  int len = count_int(static_cast<int64_t>(s.size()), "a string");
  std::vector<int> lens(static_cast<size_t>(size_));
  check_mpi(MPI_Allgather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, MPI_COMM_WORLD), "MPI_Allgather");
  std::vector<int> displs(static_cast<size_t>(size_), 0);
  int64_t total = 0;
  for (int r = 0; r < size_; ++r) {
    displs[static_cast<size_t>(r)] = count_int(total, "strings");
    total += lens[static_cast<size_t>(r)];
  }
  std::string all(static_cast<size_t>(total), '\0');
  check_mpi(MPI_Allgatherv(s.data(), len, MPI_CHAR, all.data(), lens.data(), displs.data(), MPI_CHAR, MPI_COMM_WORLD),
            "MPI_Allgatherv");
  std::vector<std::string> out;
  for (int r = 0; r < size_; ++r)
    out.push_back(all.substr(static_cast<size_t>(displs[static_cast<size_t>(r)]),
                             static_cast<size_t>(lens[static_cast<size_t>(r)])));
  return out;
#else
  return {s};
#endif
}

std::string Comm::broadcast(const std::string& s, int root) const {
  if (size_ == 1) return s;
#if KNOT_HAS_MPI
  int64_t len = static_cast<int64_t>(s.size());
  check_mpi(MPI_Bcast(&len, 1, MPI_INT64_T, root, MPI_COMM_WORLD), "MPI_Bcast");
  std::string out = rank_ == root ? s : std::string(static_cast<size_t>(len), '\0');
  check_mpi(MPI_Bcast(out.data(), count_int(len, "a string"), MPI_CHAR, root, MPI_COMM_WORLD), "MPI_Bcast");
  return out;
#else
  return s;
#endif
}

bool Comm::broadcast(bool v, int root) const {
  if (size_ == 1) return v;
#if KNOT_HAS_MPI
  int x = v ? 1 : 0;
  MPI_Request r;  // sleeps while it waits: the root may be writing a checkpoint
  check_mpi(MPI_Ibcast(&x, 1, MPI_INT, root, MPI_COMM_WORLD, &r), "MPI_Ibcast");
  idle_wait(&r);
  return x != 0;
#else
  return v;
#endif
}

void Comm::idle_barrier() const {
  if (size_ == 1) return;
#if KNOT_HAS_MPI
  MPI_Request r;
  check_mpi(MPI_Ibarrier(MPI_COMM_WORLD, &r), "MPI_Ibarrier");
  idle_wait(&r);
#endif
}

Request Comm::all_reduce_sum(void* buf, int64_t count, DType dtype) const {
  Request req;
  if (size_ == 1) return req;
#if KNOT_HAS_MPI
  req.handle_ = start_request("MPI_Iallreduce", [&](MPI_Request* r) {
    return MPI_Iallreduce(MPI_IN_PLACE, buf, count_int(count, "an all-reduce"), mpi_type(dtype), MPI_SUM,
                          MPI_COMM_WORLD, r);
  });
#else
  (void)buf, (void)count, (void)dtype;
#endif
  return req;
}

Request Comm::reduce_scatter_sum(void* buf, int64_t block, DType dtype) const {
  Request req;
  if (size_ == 1) return req;
#if KNOT_HAS_MPI
  // In place: MPI leaves this rank's summed block at the start of buf (comm.h).
  req.handle_ = start_request("MPI_Ireduce_scatter_block", [&](MPI_Request* r) {
    return MPI_Ireduce_scatter_block(MPI_IN_PLACE, buf, count_int(block, "a reduce-scatter"), mpi_type(dtype), MPI_SUM,
                                     MPI_COMM_WORLD, r);
  });
#else
  (void)buf, (void)block, (void)dtype;
#endif
  return req;
}

Request Comm::all_gather_blocks(void* buf, int64_t block, DType dtype) const {
  Request req;
  if (size_ == 1) return req;
#if KNOT_HAS_MPI
  req.handle_ = start_request("MPI_Iallgather", [&](MPI_Request* r) {
    const int n = count_int(block, "an all-gather");
    return MPI_Iallgather(MPI_IN_PLACE, n, mpi_type(dtype), buf, n, mpi_type(dtype), MPI_COMM_WORLD, r);
  });
#else
  (void)buf, (void)block, (void)dtype;
#endif
  return req;
}

void Comm::gather(const void* in, int64_t count, void* out, DType dtype, int root) const {
  if (size_ == 1) {
    std::memcpy(out, in, static_cast<size_t>(count) * dtype_size(dtype));
    return;
  }
#if KNOT_HAS_MPI
  const int n = count_int(count, "a gather");
  check_mpi(MPI_Gather(in, n, mpi_type(dtype), out, n, mpi_type(dtype), root, MPI_COMM_WORLD), "MPI_Gather");
#endif
}

void Comm::gather_v(const void* in, int64_t count, void* out, const std::vector<int64_t>& counts, DType dtype,
                    int root) const {
  KNOT_CHECK(static_cast<int>(counts.size()) == size_, "distributed: gather_v needs one count per rank");
  if (size_ == 1) {
    std::memcpy(out, in, static_cast<size_t>(count) * dtype_size(dtype));
    return;
  }
#if KNOT_HAS_MPI
  std::vector<int> cs(counts.size()), ds(counts.size());
  int64_t off = 0;
  for (size_t r = 0; r < counts.size(); ++r) {
    cs[r] = count_int(counts[r], "a gather");
    ds[r] = count_int(off, "a gather");
    off += counts[r];
  }
  check_mpi(MPI_Gatherv(in, count_int(count, "a gather"), mpi_type(dtype), out, cs.data(), ds.data(), mpi_type(dtype),
                        root, MPI_COMM_WORLD),
            "MPI_Gatherv");
#endif
}

void check_same_job(const Comm& comm, const std::string& config_text) {
  if (!comm.distributed()) return;
  std::string exe_hash = "unreadable";
  if (FILE* f = std::fopen("/proc/self/exe", "rb")) {
    std::string bytes;
    char buf[1 << 16];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.append(buf, n);
    std::fclose(f);
    exe_hash = data::sha256_hex(bytes);
  }
  const std::vector<std::string> all = comm.all_gather(data::sha256_hex(config_text) + " " + exe_hash);
  for (int r = 1; r < comm.size(); ++r) {
    const std::string& a = all[0];
    const std::string& b = all[static_cast<size_t>(r)];
    if (a == b) continue;
    const bool config_differs = a.substr(0, 64) != b.substr(0, 64);
    const bool binary_differs = a.substr(65) != b.substr(65);
    KNOT_FAIL("distributed: rank {} was started with {} than rank 0 (SHA-256 compared at start); every rank must run "
              "the same knot binary with the same config and overrides",
              r,
              config_differs && binary_differs ? "another config and another knot binary"
              : config_differs                 ? "another config (or other overrides)"
                                               : "another knot binary");
  }
}

RowRange shard_rows(int64_t rows, int rank, int world) {
  KNOT_CHECK(world >= 1 && rank >= 0 && rank < world && rows >= 0, "shard_rows: bad arguments");
  return {rows * rank / world, rows * (rank + 1) / world};
}

}  // namespace knot::dist
