// Host least-squares kernels in f64 (Eigen): the batched minimum-norm solve behind
// KANLinear::curve2coeff, and the streamed-QR map behind KANLinear's grid update / grid extension.
// Declared in kernels/linalg.h and kernels/spline.h. They run on the host only: the problems are
// small (one per input feature) and rank-revealing decompositions have no CUDA kernel here.
#include "kernels/cpu/gcc12_avx512.h"  // first: Eigen's f64 GEMM is instantiated here

#include <Eigen/Dense>

#include <algorithm>

#include "kernels/bases/bspline.h"
#include "kernels/cpu/loops.h"
#include "kernels/linalg.h"
#include "kernels/spline.h"

namespace knot::kernels {
namespace {
void check_host_f64(const char* op, const char* name, const Tensor& t, int64_t dims) {
  KNOT_CHECK(t.is_cpu() && t.dtype() == DType::f64 && t.is_contiguous() && t.dim() == dims,
             "{}: {} must be a contiguous {}-D f64 tensor on the host, got {}", op, name, dims, t.desc());
}
}  // namespace

Tensor lstsq(const Tensor& a, const Tensor& y) {
  check_host_f64("lstsq", "a", a, 3);
  check_host_f64("lstsq", "y", y, 3);
  const int64_t F = a.size(0), N = a.size(1), K = a.size(2), M = y.size(2);
  KNOT_CHECK(y.size(0) == F && y.size(1) == N, "lstsq: y {} does not match a {} (want ({}, {}, M))",
             shape_str(y.shape()), shape_str(a.shape()), F, N);
  Tensor x = empty({F, K, M}, DType::f64);
  const double* pa = a.data<double>();
  const double* py = y.data<double>();
  double* px = x.data<double>();
  // One problem per pool task: the result does not depend on the thread count.
  cpu::parallel_for(F, 1, [&](int64_t f0, int64_t f1) {
    for (int64_t f = f0; f < f1; ++f) {
      using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
      const Eigen::Map<const RowMajor> A(pa + f * N * K, N, K), Y(py + f * N * M, N, M);
      // Complete orthogonal decomposition: the minimum-norm solution, also with fewer rows than
      // columns (KANLinear's init fits G+1 points with G+k functions).
      Eigen::Map<RowMajor>(px + f * K * M, K, M) = Eigen::MatrixXd(A).completeOrthogonalDecomposition().solve(
          Eigen::MatrixXd(Y));
    }
  });
  return x;
}

// Per feature i, without forming B_old(x)·C_oldᵀ: M = [B_new | B_old] (N × (nb' + nb)) = Q·R with
// R = [R11 R12; 0 R22], accumulated over blocks of kRows rows (R ← R of [R; next rows], a tall-skinny
// QR). Then ‖B_new·c − B_old·c_old‖ = ‖R11·c − R12·c_old‖ + a term without c, so the minimum-norm
// solution is c = T_i·c_old, T_i = R11⁺·R12 from a complete orthogonal decomposition of R11
// (rank-revealing, as efficient-kan's lstsq: R11 has B_new's singular values).
// Memory: O(in·nb'·nb + threads·kRows·(nb' + nb)); time O(N·in·(nb' + nb)²).
Tensor bspline_regrid_map(const Tensor& x, const Tensor& knots_new, const Tensor& knots_old, int k) {
  const char* op = "bspline_regrid_map";
  check_host_f64(op, "x", x, 2);
  check_host_f64(op, "knots_new", knots_new, 2);
  check_host_f64(op, "knots_old", knots_old, 2);
  const int64_t N = x.size(0), in = x.size(1), nk = knots_new.size(1), nk_old = knots_old.size(1);
  KNOT_CHECK(k >= 0 && k <= basis::kMaxSplineOrder, "{}: spline order {} outside 0 … {}", op, k,
             basis::kMaxSplineOrder);
  KNOT_CHECK(knots_new.size(0) == in && knots_old.size(0) == in && nk > k + 1 && nk_old > k + 1,
             "{}: knots {} and {} do not fit x {} with order {}", op, shape_str(knots_new.shape()),
             shape_str(knots_old.shape()), shape_str(x.shape()), k);
  const int64_t nb = nk - k - 1, nb_old = nk_old - k - 1, m = nb + nb_old;
  const double* xv = x.data<double>();
  const double* kn = knots_new.data<double>();
  const double* ko = knots_old.data<double>();
  Tensor T = empty({in, nb, nb_old}, DType::f64);
  double* pt = T.data<double>();
  constexpr int64_t kRows = 256;
  // Features are independent (one pool task each): the result does not depend on the thread count.
  cpu::parallel_for(in, 1, [&](int64_t i0, int64_t i1) {
    Eigen::MatrixXd W(m + kRows, m);
    double vals[basis::kMaxSplineOrder + 1];
    for (int64_t i = i0; i < i1; ++i) {
      const double* t_new = kn + i * nk;
      const double* t_old = ko + i * nk_old;
      int64_t have = 0;  // rows of W that hold the R factor of the rows so far (at most m)
      for (int64_t r0 = 0; r0 < N; r0 += kRows) {
        const int64_t R = std::min(kRows, N - r0);
        W.middleRows(have, R).setZero();
        for (int64_t r = 0; r < R; ++r) {
          const double v = xv[(r0 + r) * in + i];
          for (int side = 0; side < 2; ++side) {  // columns 0..nb−1: new basis; nb..m−1: old basis
            const double* t = side == 0 ? t_new : t_old;
            const int64_t nkk = side == 0 ? nk : nk_old, nbb = side == 0 ? nb : nb_old, col0 = side == 0 ? 0 : nb;
            const int s = basis::bspline_span(v, t, static_cast<int>(nkk));
            if (s < 0) continue;
            basis::bspline_local(v, t, static_cast<int>(nkk), k, s, vals, static_cast<double*>(nullptr));
            for (int64_t q = 0; q <= k; ++q) {
              const int64_t j = s - k + q;
              if (j >= 0 && j < nbb) W(have + r, col0 + j) = vals[q];
            }
          }
        }
        const int64_t rows = have + R, keep = std::min(rows, m);
        const Eigen::HouseholderQR<Eigen::MatrixXd> qr(W.topRows(rows));
        W.topRows(keep) = qr.matrixQR().topRows(keep);
        for (int64_t a = 1; a < keep; ++a)  // below the diagonal: Householder vectors, not R
          for (int64_t b = 0; b < std::min(a, m); ++b) W(a, b) = 0.0;
        have = keep;
      }
      Eigen::MatrixXd R11 = Eigen::MatrixXd::Zero(nb, nb), R12 = Eigen::MatrixXd::Zero(nb, nb_old);
      const int64_t rr = std::min(have, nb);  // fewer rows than functions: zero rows below
      R11.topRows(rr) = W.block(0, 0, rr, nb);
      R12.topRows(rr) = W.block(0, nb, rr, nb_old);
      const Eigen::MatrixXd Ti = R11.completeOrthogonalDecomposition().solve(R12);
      for (int64_t a = 0; a < nb; ++a)
        for (int64_t b = 0; b < nb_old; ++b) pt[(i * nb + a) * nb_old + b] = Ti(a, b);
    }
  });
  return T;
}

}  // namespace knot::kernels
