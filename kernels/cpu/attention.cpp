// CPU fused scaled-dot-product attention (formulas in kernels/attention.h).
//
// Work is split into (b, h, block of kBlockRows query rows). For a block the scores against all
// visible keys are one Eigen GEMM into a per-thread (rows × S) buffer, the row softmax is done in
// place, and the weighted sum is a second GEMM, so the largest temporary is kBlockRows × S per
// thread instead of (B, H, T, S). With causal masking a block stops at its last visible key.
// Backward loops over the same blocks per (b, h) (dK and dV sum over every query block, so one
// (b, h) stays on one thread: no atomics, a deterministic order) and recomputes P from lse.
// Operands are read through strided Eigen maps, so (B, T, H, D) views transposed to
// (B, H, T, D) need no copy.
#include "kernels/cpu/gcc12_avx512.h"  // first: Eigen's f64 GEMM is instantiated here
#include <Eigen/Core>

#include <cmath>
#include <type_traits>
#include <vector>

#include "core/dispatch.h"
#include "kernels/attention.h"
#include "kernels/cpu/loops.h"
#include "kernels/cpu/row_math.h"
#include "kernels/dropout.h"

namespace knot::kernels::cpu {
namespace {

constexpr int64_t kBlockRows = 64;

template <typename T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using CMap = Eigen::Map<const RowMat<T>, 0, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>>;
template <typename T>
using MMap = Eigen::Map<RowMat<T>, 0, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>>;
using DynStride = Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>;

// The (rows × cols) matrix of head (b, h) of a 4-D tensor, through its strides.
template <typename T>
CMap<T> head(const Tensor& x, int64_t b, int64_t h) {
  const T* p = x.data<T>() + b * x.stride(0) + h * x.stride(1);
  return CMap<T>(p, x.size(2), x.size(3), DynStride(x.stride(2), x.stride(3)));
}
template <typename T>
MMap<T> head_mut(const Tensor& x, int64_t b, int64_t h) {
  T* p = x.data<T>() + b * x.stride(0) + h * x.stride(1);
  return MMap<T>(p, x.size(2), x.size(3), DynStride(x.stride(2), x.stride(3)));
}

// A zeroed (B, H, L, D) result stored as (B, L, H, D) and returned as the transposed view. The
// attention modules split heads as x.view(B, L, H, D).transpose(1, 2) and merge them back with
// o.transpose(1, 2).reshape(B, L, H·D): with this layout the merge of the output, and the reshapes
// of dq, dk, dv on their way back to the projections, are views instead of strided copies.
Tensor seq_major(int64_t B, int64_t H, int64_t L, int64_t D, DType dt) {
  return zeros({B, L, H, D}, dt).transpose(1, 2);
}

// Key padding mask as one byte per (b, s): 1 = padded. Empty when there is no mask.
std::vector<uint8_t> padded_keys(const Tensor& mask) {
  std::vector<uint8_t> out;
  if (!mask.defined()) return out;
  const int64_t B = mask.size(0), S = mask.size(1);
  out.resize(static_cast<size_t>(B * S));
  dispatch_all(mask.dtype(), "scaled_dot_product_attention", [&](auto tag) {
    using M = decltype(tag);
    const M* p = mask.data<M>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t s = 0; s < S; ++s) out[b * S + s] = p[b * mask.stride(0) + s * mask.stride(1)] != M(0);
  });
  return out;
}

struct Geometry {
  int64_t B, H, T, S, Dk, Dv;
  int64_t causal_offset;  // query t sees keys s <= t + causal_offset
  bool causal;
  // Keys [0, visible(t)) can be seen by query t (before the padding mask).
  int64_t visible(int64_t t) const {
    if (!causal) return S;
    return std::max<int64_t>(0, std::min<int64_t>(S, t + causal_offset + 1));
  }
};

Geometry geometry(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p) {
  Geometry g{q.size(0), q.size(1), q.size(2), k.size(2), q.size(3), v.size(3), k.size(2) - q.size(2), p.causal};
  return g;
}

// Turns one row of scaled scores (length n, the visible keys) into probabilities in place and
// returns the row's logsumexp; padded keys get probability 0, an all-masked row is all 0 and
// gives −inf.
template <typename T>
T softmax_row(T* row, int64_t n, const uint8_t* pad) {
  T m = -INFINITY;
  for (int64_t s = 0; s < n; ++s) {
    if (pad && pad[s]) row[s] = -INFINITY;
    else if (row[s] > m) m = row[s];
  }
  if (m == -INFINITY) {
    for (int64_t s = 0; s < n; ++s) row[s] = T(0);
    return m;
  }
  if constexpr (std::is_same_v<T, float>) {
    // Eigen's vectorised exp, summed in f32 lanes; the same expression as probs_from_lse, so the
    // probabilities backward recomputes are bit-identical to these.
    const T lse = m + static_cast<T>(std::log(static_cast<double>(rowmath::sum_exp_shifted(row, n, m))));
    rowmath::exp_shifted(row, row, n, lse);
    if (pad)  // Eigen's exp(−inf) is ~1e−38, not 0
      for (int64_t s = 0; s < n; ++s)
        if (pad[s]) row[s] = T(0);
    return lse;
  } else {
    double sum = 0;
    for (int64_t s = 0; s < n; ++s) sum += std::exp(static_cast<double>(row[s] - m));
    const T lse = m + static_cast<T>(std::log(sum));
    for (int64_t s = 0; s < n; ++s) row[s] = std::exp(row[s] - lse);  // exp(−inf) = 0 for padded keys
    return lse;
  }
}

// P = exp(S − lse) for a recomputed row of scores, 0 on masked keys and on all-masked rows.
template <typename T>
void probs_from_lse(T* row, int64_t n, const uint8_t* pad, T lse) {
  if (lse == -INFINITY) {
    for (int64_t s = 0; s < n; ++s) row[s] = T(0);
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    rowmath::exp_shifted(row, row, n, lse);
    if (pad)
      for (int64_t s = 0; s < n; ++s)
        if (pad[s]) row[s] = T(0);
  } else {
    for (int64_t s = 0; s < n; ++s) row[s] = (pad && pad[s]) ? T(0) : std::exp(row[s] - lse);
  }
}

// row[s] *= keep(s) / (1 − p) for the dropout element of (bh, t, s).
template <typename T>
void apply_dropout_row(T* row, int64_t n, const AttentionParams& p, const Geometry& g, int64_t bh, int64_t t) {
  const T inv_keep = static_cast<T>(1.0 / (1.0 - p.dropout_p));
  const float pf = static_cast<float>(p.dropout_p);
  const uint64_t base = p.dropout_offset + static_cast<uint64_t>((bh * g.T + t) * g.S);
  for (int64_t s = 0; s < n; ++s) row[s] = dropout_keep(p.seed, p.draw, base + s, pf) ? row[s] * inv_keep : T(0);
}

}  // namespace

AttentionFwd attention_fwd(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                           const AttentionParams& p) {
  const Geometry g = geometry(q, k, v, p);
  AttentionFwd f{seq_major(g.B, g.H, g.T, g.Dv, q.dtype()), empty({g.B, g.H, g.T}, q.dtype())};
  const std::vector<uint8_t> pad = padded_keys(mask);
  const bool dropout = p.dropout_p > 0.0;
  const int64_t nblocks = (g.T + kBlockRows - 1) / kBlockRows, items = g.B * g.H * nblocks;
  dispatch_float(q.dtype(), "scaled_dot_product_attention", [&](auto tag) {
    using T = decltype(tag);
    const T scale = static_cast<T>(p.scale);
    T* lse = f.lse.data<T>();
    auto run = [&](int64_t i0, int64_t i1) {
      RowMat<T> scores;
      for (int64_t item = i0; item < i1; ++item) {
        const int64_t bh = item / nblocks, blk = item % nblocks, b = bh / g.H, h = bh % g.H;
        const int64_t t0 = blk * kBlockRows, n = std::min(kBlockRows, g.T - t0);
        const int64_t ncols = g.visible(t0 + n - 1);  // keys any row of the block can see
        T* lse_row = lse + bh * g.T + t0;
        if (ncols == 0) {  // every row fully masked: output stays 0
          for (int64_t r = 0; r < n; ++r) lse_row[r] = -INFINITY;
          continue;
        }
        const CMap<T> Q = head<T>(q, b, h), K = head<T>(k, b, h), V = head<T>(v, b, h);
        scores.resize(n, ncols);
        scores.noalias() = scale * (Q.middleRows(t0, n) * K.topRows(ncols).transpose());
        const uint8_t* pad_b = pad.empty() ? nullptr : pad.data() + b * g.S;
        for (int64_t r = 0; r < n; ++r) {
          T* row = scores.data() + r * ncols;
          const int64_t vis = g.visible(t0 + r);
          for (int64_t s = vis; s < ncols; ++s) row[s] = T(0);  // causal: after the limit
          lse_row[r] = softmax_row(row, vis, pad_b);
          if (dropout) apply_dropout_row(row, vis, p, g, bh, t0 + r);
        }
        MMap<T> O = head_mut<T>(f.out, b, h);
        O.middleRows(t0, n).noalias() = scores * V.topRows(ncols);
      }
    };
    // Few big items: let Eigen thread each GEMM; many: one item per thread at a time.
    if (items >= num_threads() && items > 1) {
      parallel_chunks(items, [&](int64_t item) { run(item, item + 1); });
    } else {
      run(0, items);
    }
  });
  return f;
}

AttentionBwd attention_bwd(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                           const Tensor& lse_t, const Tensor& mask, const AttentionParams& p) {
  const Geometry g = geometry(q, k, v, p);
  AttentionBwd r{seq_major(g.B, g.H, g.T, g.Dk, q.dtype()), seq_major(g.B, g.H, g.S, g.Dk, q.dtype()),
                 seq_major(g.B, g.H, g.S, g.Dv, q.dtype())};
  const std::vector<uint8_t> pad = padded_keys(mask);
  const bool dropout = p.dropout_p > 0.0;
  const int64_t nbh = g.B * g.H;
  dispatch_float(q.dtype(), "scaled_dot_product_attention", [&](auto tag) {
    using T = decltype(tag);
    const T scale = static_cast<T>(p.scale);
    const T* lse = lse_t.data<T>();
    auto one_head = [&](int64_t bh) {
      const int64_t b = bh / g.H, h = bh % g.H;
      const CMap<T> Q = head<T>(q, b, h), K = head<T>(k, b, h), V = head<T>(v, b, h);
      const CMap<T> dO = head<T>(dout, b, h), O = head<T>(out, b, h);
      MMap<T> dQ = head_mut<T>(r.dq, b, h), dK = head_mut<T>(r.dk, b, h), dV = head_mut<T>(r.dv, b, h);
      const uint8_t* pad_b = pad.empty() ? nullptr : pad.data() + b * g.S;
      RowMat<T> P, dP;
      Eigen::Matrix<T, Eigen::Dynamic, 1> D;
      for (int64_t t0 = 0; t0 < g.T; t0 += kBlockRows) {
        const int64_t n = std::min(kBlockRows, g.T - t0), ncols = g.visible(t0 + n - 1);
        if (ncols == 0) continue;  // all rows masked: no gradient
        const auto Qb = Q.middleRows(t0, n);
        const auto dOb = dO.middleRows(t0, n);
        const auto Kc = K.topRows(ncols);
        const auto Vc = V.topRows(ncols);
        P.resize(n, ncols);
        P.noalias() = scale * (Qb * Kc.transpose());
        for (int64_t i = 0; i < n; ++i) {
          T* row = P.data() + i * ncols;
          const int64_t vis = g.visible(t0 + i);
          for (int64_t s = vis; s < ncols; ++s) row[s] = T(0);
          probs_from_lse(row, vis, pad_b, lse[bh * g.T + t0 + i]);
        }
        dP.resize(n, ncols);
        dP.noalias() = dOb * Vc.transpose();  // dP̃
        // D_t = Σ_j dO_tj O_tj
        D = (dOb.array() * O.middleRows(t0, n).array()).rowwise().sum().matrix();
        if (dropout) {
          // dV needs P̃ = P ⊙ keep/(1−p); dP = dP̃ ⊙ keep/(1−p). Masked and causal entries of P are 0.
          RowMat<T> Pd = P;
          for (int64_t i = 0; i < n; ++i) {
            const int64_t vis = g.visible(t0 + i);
            apply_dropout_row(Pd.data() + i * ncols, vis, p, g, bh, t0 + i);
            apply_dropout_row(dP.data() + i * ncols, vis, p, g, bh, t0 + i);
          }
          dV.topRows(ncols).noalias() += Pd.transpose() * dOb;
        } else {
          dV.topRows(ncols).noalias() += P.transpose() * dOb;
        }
        // dS = P ⊙ (dP − D), stored in dP (entries with P = 0 become 0).
        dP = (P.array() * (dP.colwise() - D).array()).matrix();
        dQ.middleRows(t0, n).noalias() = scale * (dP * Kc);
        dK.topRows(ncols).noalias() += scale * (dP.transpose() * Qb);
      }
    };
    if (nbh >= num_threads() && nbh > 1) {
      parallel_chunks(nbh, one_head);
    } else {
      for (int64_t bh = 0; bh < nbh; ++bh) one_head(bh);
    }
  });
  return r;
}

}  // namespace knot::kernels::cpu
