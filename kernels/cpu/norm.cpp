// CPU layer norm (see kernels/norm.h). Rows in parallel for y and dx; dweight/dbias are column
// sums split by columns across threads, each thread walking all rows in order, so the result does
// not depend on the thread count (no atomics, no per-thread partials). f32 accumulates in f64, row
// sums over vector lanes (kernels/cpu/row_math.h).
#include "kernels/cpu/gcc12_avx512.h"  // first: row_math.h pulls in Eigen
#include "kernels/norm.h"

#include <cmath>
#include <vector>

#include "core/dispatch.h"
#include "kernels/cpu/loops.h"
#include "kernels/cpu/row_math.h"
#include "kernels/nn_math.h"

namespace knot::kernels::cpu {
namespace {

int64_t row_grain(int64_t row_len) { return std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(row_len, 1)); }

Tensor flat_contiguous(const Tensor& t) { return t.defined() ? dense(t) : Tensor(); }

}  // namespace

LayerNormFwd layer_norm_fwd(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, int64_t n, double eps) {
  const Tensor x = flat_contiguous(x_in), w = flat_contiguous(w_in), b = flat_contiguous(b_in);
  const int64_t m = n > 0 ? x.numel() / n : 0;
  LayerNormFwd out{empty(x.shape(), x.dtype()), empty({m}, x.dtype()), empty({m}, x.dtype())};
  dispatch_float(x.dtype(), "layer_norm", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* pw = w.defined() ? w.data<T>() : nullptr;
    const T* pb = b.defined() ? b.data<T>() : nullptr;
    T* py = out.y.data<T>();
    T* pmean = out.mean.data<T>();
    T* prstd = out.rstd.data<T>();
    parallel_for(m, row_grain(n), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = px + r * n;
        // Two passes over a row in cache: no cancellation from E[x²] − E[x]².
        const double mu = rowmath::sum(xr, n) / static_cast<double>(n);
        const double ss = rowmath::sum_sq_dev(xr, n, mu);
        const double rstd = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
        pmean[r] = static_cast<T>(mu);
        prstd[r] = static_cast<T>(rstd);
        T* yr = py + r * n;
        for (int64_t j = 0; j < n; ++j) {
          double v = (xr[j] - mu) * rstd;
          if (pw) v *= pw[j];
          if (pb) v += pb[j];
          yr[j] = static_cast<T>(v);
        }
      }
    });
  });
  return out;
}

LayerNormBwd layer_norm_bwd(const Tensor& g_in, const Tensor& x_in, const Tensor& w_in, const Tensor& mean,
                            const Tensor& rstd, int64_t n, bool need_dx, bool need_dweight, bool need_dbias) {
  const Tensor g = flat_contiguous(g_in), x = flat_contiguous(x_in), w = flat_contiguous(w_in);
  const Tensor mean_c = flat_contiguous(mean), rstd_c = flat_contiguous(rstd);
  const int64_t m = n > 0 ? x.numel() / n : 0;
  LayerNormBwd out;
  if (need_dx) out.dx = empty(x.shape(), x.dtype());
  if (need_dweight) out.dweight = empty({n}, x.dtype());
  if (need_dbias) out.dbias = empty({n}, x.dtype());
  dispatch_float(x.dtype(), "layer_norm", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* pg = g.data<T>();
    const T* pw = w.defined() ? w.data<T>() : nullptr;
    const T* pmean = mean_c.data<T>();
    const T* prstd = rstd_c.data<T>();
    if (need_dx) {
      T* pdx = out.dx.data<T>();
      parallel_for(m, row_grain(n), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const T *xr = px + r * n, *gr = pg + r * n;
          const double mu = pmean[r], rs = prstd[r];
          double sum_gh, sum_gh_xhat;
          rowmath::ln_bwd_sums(gr, pw, xr, n, mu, rs, sum_gh, sum_gh_xhat);
          const double inv_n = 1.0 / static_cast<double>(n);
          const double mean_gh = sum_gh * inv_n, mean_gh_xhat = sum_gh_xhat * inv_n;
          T* dxr = pdx + r * n;
          for (int64_t j = 0; j < n; ++j) {
            const double gh = pw ? static_cast<double>(gr[j]) * pw[j] : static_cast<double>(gr[j]);
            dxr[j] = static_cast<T>(math::layer_norm_dx(gh, (xr[j] - mu) * rs, rs, mean_gh, mean_gh_xhat));
          }
        }
      });
    }
    if (need_dweight || need_dbias) {
      T* pdw = need_dweight ? out.dweight.data<T>() : nullptr;
      T* pdb = need_dbias ? out.dbias.data<T>() : nullptr;
      parallel_for(n, row_grain(m), [&](int64_t j0, int64_t j1) {
        std::vector<double> acc_w(static_cast<size_t>(j1 - j0), 0.0), acc_b(static_cast<size_t>(j1 - j0), 0.0);
        for (int64_t r = 0; r < m; ++r) {
          const T *xr = px + r * n, *gr = pg + r * n;
          const double mu = pmean[r], rs = prstd[r];
          for (int64_t j = j0; j < j1; ++j) {
            acc_w[j - j0] += static_cast<double>(gr[j]) * ((xr[j] - mu) * rs);
            acc_b[j - j0] += gr[j];
          }
        }
        for (int64_t j = j0; j < j1; ++j) {
          if (pdw) pdw[j] = static_cast<T>(acc_w[j - j0]);
          if (pdb) pdb[j] = static_cast<T>(acc_b[j - j0]);
        }
      });
    }
  });
  return out;
}

}  // namespace knot::kernels::cpu
