// CPU embedding kernels (see kernels/embedding.h): a row gather forward, and a column-parallel
// scatter-add backward.
#include "kernels/embedding.h"

#include <algorithm>

#include "core/dispatch.h"
#include "kernels/cpu/loops.h"
#include "kernels/elementwise.h"

namespace knot::kernels::cpu {
namespace {

// ids as int64 in row-major order, each checked against [0, V). Serial: it is one pass over the
// token ids, and an error cannot leave an OpenMP region.
std::vector<int64_t> read_ids(const Tensor& ids_in, int64_t num_embeddings) {
  const Tensor ids = dense(ids_in);
  std::vector<int64_t> out(static_cast<size_t>(ids.numel()));
  dispatch_index(ids.dtype(), "embedding", [&](auto tag) {
    using I = decltype(tag);
    const I* p = ids.data<I>();
    for (size_t t = 0; t < out.size(); ++t) {
      const int64_t v = static_cast<int64_t>(p[t]);
      KNOT_CHECK(v >= 0 && v < num_embeddings,
                 "embedding: id {} (at position {}) is out of range for a table of V={} rows", v, t, num_embeddings);
      out[t] = v;
    }
  });
  return out;
}

}  // namespace

Tensor embedding_fwd(const Tensor& ids, const Tensor& weight_in) {
  const Tensor w = dense(weight_in);
  const int64_t V = w.shape()[0], D = w.shape()[1];
  const std::vector<int64_t> id = read_ids(ids, V);
  const int64_t N = static_cast<int64_t>(id.size());
  Shape out_shape = ids.shape();
  out_shape.push_back(D);
  Tensor out = empty(out_shape, w.dtype());
  dispatch_float(w.dtype(), "embedding", [&](auto tag) {
    using T = decltype(tag);
    const T* pw = w.data<T>();
    T* po = out.data<T>();
    parallel_for(N, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(D, 1)), [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) std::copy(pw + id[t] * D, pw + (id[t] + 1) * D, po + t * D);
    });
  });
  return out;
}

Tensor embedding_bwd(const Tensor& g_in, const Tensor& ids, int64_t num_embeddings, int64_t padding_idx) {
  const Tensor g = dense(g_in);
  const int64_t D = g.shape().back();
  const std::vector<int64_t> id = read_ids(ids, num_embeddings);
  const int64_t N = static_cast<int64_t>(id.size());
  KNOT_CHECK(g.numel() == N * D, "embedding: gradient {} does not match {} ids of dim {}", shape_str(g.shape()), N, D);
  Tensor gw = zeros({num_embeddings, D}, g.dtype());
  dispatch_float(g.dtype(), "embedding", [&](auto tag) {
    using T = decltype(tag);
    const T* pg = g.data<T>();
    T* pw = gw.data<T>();
    parallel_for(D, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(N, 1)), [&](int64_t c0, int64_t c1) {
      for (int64_t t = 0; t < N; ++t) {
        if (id[t] == padding_idx) continue;  // padding rows are constants: no gradient
        T* dst = pw + id[t] * D;
        const T* src = pg + t * D;
        for (int64_t c = c0; c < c1; ++c) dst[c] += src[c];
      }
    });
  });
  return gw;
}

}  // namespace knot::kernels::cpu
