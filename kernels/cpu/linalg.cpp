// CPU GEMM on Eigen. Each operand is an Eigen::Map with runtime outer/inner strides over the
// tensor's storage, and a transpose flag becomes .transpose() on the map: Eigen's GEMM packs
// panels anyway, so a transposed or strided view costs no extra copy.
// Batches: when there are at least as many batches as threads they are spread over threads (each
// GEMM single-threaded); otherwise each GEMM uses Eigen's own OpenMP parallelism.
#include <Eigen/Core>

#include "core/dispatch.h"
#include "kernels/cpu/loops.h"
#include "kernels/linalg.h"

namespace knot::kernels::cpu {
namespace {

template <typename T>
using MatMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0,
                          Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>>;
template <typename T>
using OutMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;

// Offset of batch b (row-major over `batch`) for a tensor whose batch dims broadcast to `batch`.
int64_t batch_offset(int64_t b, const Shape& batch, const Shape& bstrides) {
  int64_t off = 0;
  for (int d = static_cast<int>(batch.size()) - 1; d >= 0; --d) {
    off += (b % batch[d]) * bstrides[d];
    b /= batch[d];
  }
  return off;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  KNOT_CHECK(a.dim() >= 2 && b.dim() >= 2, "matmul: kernel needs 2-D or batched operands, got {} and {}",
             shape_str(a.shape()), shape_str(b.shape()));
  const int64_t M = a.size(ta ? -1 : -2), Ka = a.size(ta ? -2 : -1);
  const int64_t Kb = b.size(tb ? -1 : -2), N = b.size(tb ? -2 : -1);
  KNOT_CHECK(Ka == Kb, "matmul: inner dims differ: {}{} x {}{}", shape_str(a.shape()), ta ? "ᵀ" : "",
             shape_str(b.shape()), tb ? "ᵀ" : "");
  const Shape abatch(a.shape().begin(), a.shape().end() - 2), bbatch(b.shape().begin(), b.shape().end() - 2);
  const Shape batch = broadcast_shapes(abatch, bbatch, "matmul");
  // Batch strides aligned to `batch`, 0 where broadcast.
  auto bstrides = [&](const Tensor& t, const Shape& tb_shape) {
    Shape st(batch.size(), 0);
    const size_t off = batch.size() - tb_shape.size();
    for (size_t i = 0; i < tb_shape.size(); ++i) st[off + i] = tb_shape[i] == 1 ? 0 : t.strides()[i];
    return st;
  };
  const Shape as = bstrides(a, abatch), bs = bstrides(b, bbatch);
  Shape out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor out = empty(out_shape, a.dtype());
  const int64_t nb = shape_numel(batch);
  dispatch_float(a.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    const T* pa = static_cast<const T*>(a.storage()->data);
    const T* pb = static_cast<const T*>(b.storage()->data);
    T* po = out.data<T>();
    // Row-major maps of the stored matrices: rows x cols with (row stride, col stride).
    const int64_t ar = a.size(-2), ac = a.size(-1), br = b.size(-2), bc = b.size(-1);
    const Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic> sa(a.stride(-2), a.stride(-1)), sb(b.stride(-2), b.stride(-1));
    auto one = [&](int64_t i) {
      MatMap<T> A(pa + a.offset() + batch_offset(i, batch, as), ar, ac, sa);
      MatMap<T> B(pb + b.offset() + batch_offset(i, batch, bs), br, bc, sb);
      OutMap<T> C(po + i * M * N, M, N);
      if (M == 0 || N == 0) return;
      if (Ka == 0) { C.setZero(); return; }
      if (!ta && !tb) C.noalias() = A * B;
      else if (ta && !tb) C.noalias() = A.transpose() * B;
      else if (!ta && tb) C.noalias() = A * B.transpose();
      else C.noalias() = A.transpose() * B.transpose();
    };
    if (nb >= num_threads() && nb > 1) {
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < nb; ++i) one(i);
    } else {
      for (int64_t i = 0; i < nb; ++i) one(i);
    }
  });
  return out;
}

}  // namespace knot::kernels::cpu
