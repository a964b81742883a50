// CPU GEMM on Eigen. Each operand is an Eigen::Map with runtime outer/inner strides over the
// tensor's storage, and a transpose flag becomes .transpose() on the map: Eigen's GEMM packs
// panels anyway, so a transposed or strided view costs no extra copy.
// Batches: when there are at least as many batches as threads they are spread over threads (each
// GEMM single-threaded); otherwise each GEMM uses Eigen's own OpenMP parallelism.
#include "kernels/cpu/gcc12_avx512.h"  // first: Eigen's f64 GEMM is instantiated here
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

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const GemmShape g = gemm_shape(a, b, ta, tb);
  const int64_t M = g.M, N = g.N, Ka = g.K, nb = g.batches;
  const Shape& batch = g.batch;
  const Shape as = gemm_batch_strides(a, batch), bs = gemm_batch_strides(b, batch);
  Tensor out = empty(g.out_shape, a.dtype());
  dispatch_float(a.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    const T* pa = static_cast<const T*>(a.storage()->data);
    const T* pb = static_cast<const T*>(b.storage()->data);
    T* po = out.data<T>();
    // Row-major maps of the stored matrices: rows x cols with (row stride, col stride).
    const int64_t ar = a.size(-2), ac = a.size(-1), br = b.size(-2), bc = b.size(-1);
    const Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic> sa(a.stride(-2), a.stride(-1)), sb(b.stride(-2), b.stride(-1));
    auto one = [&](int64_t i) {
      MatMap<T> A(pa + a.offset() + gemm_batch_offset(i, batch, as), ar, ac, sa);
      MatMap<T> B(pb + b.offset() + gemm_batch_offset(i, batch, bs), br, bc, sb);
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
