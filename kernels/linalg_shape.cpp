// GEMM shape checks and batch-broadcast offsets shared by the CPU and CUDA GEMMs (see linalg.h).
#include "kernels/linalg.h"

namespace knot::kernels {

GemmShape gemm_shape(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  KNOT_CHECK(a.dim() >= 2 && b.dim() >= 2, "matmul: kernel needs 2-D or batched operands, got {} and {}",
             shape_str(a.shape()), shape_str(b.shape()));
  GemmShape g;
  g.M = a.size(ta ? -1 : -2);
  g.K = a.size(ta ? -2 : -1);
  const int64_t Kb = b.size(tb ? -1 : -2);
  g.N = b.size(tb ? -2 : -1);
  KNOT_CHECK(g.K == Kb, "matmul: inner dims differ: {}{} x {}{}", shape_str(a.shape()), ta ? "ᵀ" : "",
             shape_str(b.shape()), tb ? "ᵀ" : "");
  const Shape abatch(a.shape().begin(), a.shape().end() - 2), bbatch(b.shape().begin(), b.shape().end() - 2);
  g.batch = broadcast_shapes(abatch, bbatch, "matmul");
  g.out_shape = g.batch;
  g.out_shape.push_back(g.M);
  g.out_shape.push_back(g.N);
  g.batches = shape_numel(g.batch);
  return g;
}

Shape gemm_batch_strides(const Tensor& t, const Shape& batch) {
  Shape st(batch.size(), 0);
  const size_t tb = static_cast<size_t>(t.dim()) - 2;
  const size_t off = batch.size() - tb;
  for (size_t i = 0; i < tb; ++i) st[off + i] = t.shape()[i] == 1 ? 0 : t.strides()[i];
  return st;
}

int64_t gemm_batch_offset(int64_t i, const Shape& batch, const Shape& strides) {
  int64_t off = 0;
  for (int d = static_cast<int>(batch.size()) - 1; d >= 0; --d) {
    off += (i % batch[d]) * strides[d];
    i /= batch[d];
  }
  return off;
}

}  // namespace knot::kernels
