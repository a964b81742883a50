// Deterministic scatter-add without atomics, shared by the embedding and index_select backward:
// the host (which reads the ids anyway, to range-check them) groups the source positions by
// destination with a stable counting sort; one device thread per (destination, column) then adds
// its sources in increasing source order, the same order the CPU loops use, so the sums match the
// CPU bit for bit and do not depend on the launch.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cuda/common.cuh"

namespace knot::cuda_detail {

// CSR of the sources of each used destination: dest[s], sources perm[start[s] .. start[s+1]).
struct Segments {
  Tensor table;  // i64 on the device: [dest (nseg) | start (nseg+1) | perm (nsrc)]
  int64_t nseg = 0, nsrc = 0;
};

// ids: destination of each source position (−1 = skip); every id in [0, ndest).
inline Segments make_segments(const std::vector<int64_t>& ids, int64_t ndest, Device device) {
  std::vector<int64_t> count(static_cast<size_t>(ndest) + 1, 0);
  int64_t nsrc = 0;
  for (int64_t v : ids)
    if (v >= 0) ++count[static_cast<size_t>(v)], ++nsrc;
  int64_t nseg = 0;
  for (int64_t v = 0; v < ndest; ++v) nseg += count[static_cast<size_t>(v)] > 0;
  std::vector<int64_t> h(static_cast<size_t>(2 * nseg + 1 + nsrc));
  int64_t* dest = h.data();
  int64_t* start = dest + nseg;
  int64_t* perm = start + nseg + 1;
  std::vector<int64_t> pos(static_cast<size_t>(ndest), 0);
  int64_t s = 0, off = 0;
  for (int64_t v = 0; v < ndest; ++v) {
    if (count[static_cast<size_t>(v)] == 0) continue;
    dest[s] = v;
    start[s] = off;
    pos[static_cast<size_t>(v)] = off;
    off += count[static_cast<size_t>(v)];
    ++s;
  }
  start[nseg] = off;
  for (int64_t i = 0; i < static_cast<int64_t>(ids.size()); ++i)
    if (ids[i] >= 0) perm[pos[static_cast<size_t>(ids[i])]++] = i;  // increasing i within a segment
  Segments seg;
  seg.nseg = nseg;
  seg.nsrc = nsrc;
  if (h.empty()) h.push_back(0);
  seg.table = from_vector(h, {static_cast<int64_t>(h.size())}).to(device);
  return seg;
}

// gx[(o·ndest + dest[s])·inner + c] = Σ_k g[(o·nsrc_total + perm[k])·inner + c] over segment s;
// one thread per (o, s, c). Destinations with no source are left as they are (zero-filled first).
template <typename T>
__global__ void segment_sum_kernel(const T* __restrict__ g, const int64_t* __restrict__ table, int64_t nseg,
                                   int64_t outer, int64_t inner, int64_t src_rows, int64_t ndest,
                                   T* __restrict__ gx) {
  const int64_t* dest = table;
  const int64_t* start = dest + nseg;
  const int64_t* perm = start + nseg + 1;
  const int64_t n = outer * nseg * inner;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = e % inner, s = (e / inner) % nseg, o = e / (inner * nseg);
    T acc = T(0);
    for (int64_t k = start[s]; k < start[s + 1]; ++k) acc += g[(o * src_rows + perm[k]) * inner + c];
    gx[(o * ndest + dest[s]) * inner + c] = acc;
  }
}

}  // namespace knot::cuda_detail
