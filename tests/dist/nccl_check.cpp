// The NCCL path of data parallelism on real GPUs (dist/nccl.h), run by ctest `cuda.nccl_collectives`
// under `mpirun -np N` (tests/tools/nccl_check.sh; N = 1 on a one-GPU machine, 2 with two or more).
// For f32 and f64, with rank-dependent values and odd sizes: all-reduce, reduce-scatter and all-gather
// against the sums computed on the host. Exits 77 (ctest: skipped) with the reason when this build
// has no NCCL or the machine no GPU.
#include <cstdio>
#include <vector>

#include "core/device.h"
#include "core/error.h"
#include "core/tensor.h"
#include "dist/comm.h"
#include "dist/nccl.h"

using namespace knot;

namespace {

int skip(const char* why) {
  std::printf("nccl_check: skipped: %s\n", why);
  dist::finalize();
  return 77;
}

// Value of element i on rank r: distinct per rank and element, exact in f32.
double value(int r, int64_t i) { return static_cast<double>((r + 1) * 1000 + (i % 997)); }

template <typename T>
int check(dist::NcclComm& nc, int64_t block) {
  const int R = nc.size(), me = nc.rank();
  const DType dt = sizeof(T) == 4 ? DType::f32 : DType::f64;
  const int64_t n = block * R;
  std::vector<T> host(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) host[static_cast<size_t>(i)] = static_cast<T>(value(me, i));
  auto sum_over_ranks = [&](int64_t i) {
    double s = 0;
    for (int r = 0; r < R; ++r) s += value(r, i);
    return s;
  };
  int bad = 0;
  const Device gpu = Device::cuda(nc.device());
  {  // all-reduce
    Tensor t = from_vector(host, {n}).to(gpu);
    nc.all_reduce_sum(t.raw_data(), n, dt);
    nc.wait();
    const std::vector<double> got = t.to(Device::cpu()).template to_vector<double>();
    for (int64_t i = 0; i < n; ++i) bad += got[static_cast<size_t>(i)] != sum_over_ranks(i);
  }
  {  // reduce-scatter: block `me` holds the sums
    Tensor t = from_vector(host, {n}).to(gpu);
    nc.reduce_scatter_sum(t.raw_data(), block, dt);
    nc.wait();
    const std::vector<double> got = t.to(Device::cpu()).template to_vector<double>();
    for (int64_t i = me * block; i < (me + 1) * block; ++i) bad += got[static_cast<size_t>(i)] != sum_over_ranks(i);
  }
  {  // all-gather: block r is rank r's
    Tensor t = from_vector(host, {n}).to(gpu);
    nc.all_gather_blocks(t.raw_data(), block, dt);
    nc.wait();
    const std::vector<double> got = t.to(Device::cpu()).template to_vector<double>();
    for (int r = 0; r < R; ++r)
      for (int64_t i = r * block; i < (r + 1) * block; ++i) bad += got[static_cast<size_t>(i)] != value(r, i);
  }
  return bad;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    dist::init(&argc, &argv);
    if (!dist::nccl_available()) return skip("this build has no NCCL (needs the CUDA backend, MPI and libnccl)");
    if (!cuda_available()) return skip("no GPU is visible");
    const dist::Comm& world = dist::Comm::world();
    auto nc = dist::NcclComm::create(world);
    int bad = 0;
    for (int64_t block : {1, 1001, 1 << 20}) {
      bad += check<float>(*nc, block);
      bad += check<double>(*nc, block);
    }
    std::printf("nccl_check: rank %d of %d on GPU %d (%s): %s\n", world.rank(), world.size(), nc->device(),
                nc->version().c_str(), bad == 0 ? "all-reduce, reduce-scatter and all-gather agree with the host sums"
                                                : "MISMATCHES");
    nc.reset();
    dist::finalize();
    return bad == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nccl_check: error: %s\n", e.what());
    dist::abort_job(1);
  }
}
