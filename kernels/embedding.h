// Embedding lookup and its deterministic backward.
//   out[t, :] = weight[ids[t], :]                      ids: (...) i32/i64, weight: (V, D) -> (..., D)
//   gw[v, :]  = Σ_{t : ids[t] == v, v != padding_idx} g[t, :]
// The backward gives each thread a fixed range of embedding columns and walks the tokens in order,
// so repeated ids sum in the same order for any thread count (no atomics, no sort).
#pragma once

#include "kernels/dispatch.h"

namespace knot::kernels {

#define KNOT_EMBEDDING_KERNELS(X)                                                                               \
  /* ids: (...) i32/i64 in [0, V); weight: (V, D) float -> (..., D) */                                          \
  X(Tensor, embedding_fwd, (const Tensor& ids, const Tensor& weight))                                           \
  /* g: (..., D); ids: (...) -> gw: (V, D); rows == padding_idx (when >= 0) stay zero */                        \
  X(Tensor, embedding_bwd, (const Tensor& g, const Tensor& ids, int64_t num_embeddings, int64_t padding_idx))

namespace cpu { KNOT_EMBEDDING_KERNELS(KNOT_DECLARE_KERNEL) }
namespace cuda { KNOT_EMBEDDING_KERNELS(KNOT_DECLARE_KERNEL) }

inline Tensor embedding_fwd(const Tensor& ids, const Tensor& weight) {
  check_same_device("embedding", ids, weight);
  return KNOT_DISPATCH(weight, embedding_fwd(ids, weight));
}
inline Tensor embedding_bwd(const Tensor& g, const Tensor& ids, int64_t num_embeddings, int64_t padding_idx) {
  check_same_device("embedding", g, ids);
  return KNOT_DISPATCH(g, embedding_bwd(g, ids, num_embeddings, padding_idx));
}

}  // namespace knot::kernels
