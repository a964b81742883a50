// CPU softmax family (see kernels/softmax.h). One row per (outer, inner) pair, rows in parallel;
// a row along a non-last dim is read with stride `inner`, so no transpose copy is made.
#include "kernels/softmax.h"

#include <type_traits>

#include "core/dispatch.h"
#include "kernels/cpu/loops.h"
#include "kernels/nn_math.h"

namespace knot::kernels::cpu {
namespace {

using math::OnlineLse;

int64_t row_grain(int64_t row_len) { return std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(row_len, 1)); }

// One pass of the online max / Σexp over a strided row.
template <typename T>
double row_lse(const T* row, int64_t n, int64_t stride) {
  OnlineLse<double> st;
  for (int64_t j = 0; j < n; ++j) math::online_lse_add(st, static_cast<double>(row[j * stride]));
  return math::online_lse_result(st);
}

}  // namespace

Tensor softmax_fwd(const Tensor& x_in, int dim, bool log_space) {
  const char* op = log_space ? "log_softmax" : "softmax";
  const Tensor x = dense(x_in);
  Tensor y = empty(x.shape(), x.dtype());
  const DimSplit sp = split_at_dim(x.shape(), dim);
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    parallel_for(sp.rows(), row_grain(sp.n), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t base = sp.row_base(r), s = sp.inner;
        const T* xr = px + base;
        T* yr = py + base;
        if (s == 1 && !log_space && sp.n > 0) {
          // Contiguous row (the common case): max pass, one exp per element written straight into
          // y while summing in double, then one scale. The row stays in L1 between passes.
          T mx = xr[0];
          for (int64_t j = 1; j < sp.n; ++j) mx = xr[j] > mx ? xr[j] : mx;
          double total = 0;
          for (int64_t j = 0; j < sp.n; ++j) {
            const T e = std::exp(xr[j] - mx);
            yr[j] = e;
            total += e;
          }
          const T inv = static_cast<T>(1.0 / total);
          for (int64_t j = 0; j < sp.n; ++j) yr[j] *= inv;
          continue;
        }
        const double lse = row_lse(xr, sp.n, s);
        if (log_space) {
          for (int64_t j = 0; j < sp.n; ++j) yr[j * s] = static_cast<T>(static_cast<double>(xr[j * s]) - lse);
        } else {
          for (int64_t j = 0; j < sp.n; ++j) yr[j * s] = static_cast<T>(std::exp(static_cast<double>(xr[j * s]) - lse));
        }
      }
    });
  });
  return y;
}

Tensor softmax_bwd(const Tensor& y_in, const Tensor& g_in, int dim, bool log_space) {
  const char* op = log_space ? "log_softmax" : "softmax";
  const Tensor y = dense(y_in);
  const Tensor g = dense(g_in);
  Tensor gx = empty(y.shape(), y.dtype());
  const DimSplit sp = split_at_dim(y.shape(), dim);
  dispatch_float(y.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* py = y.data<T>();
    const T* pg = g.data<T>();
    T* po = gx.data<T>();
    parallel_for(sp.rows(), row_grain(sp.n), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t base = sp.row_base(r), s = sp.inner;
        const T *yr = py + base, *gr = pg + base;
        T* out = po + base;
        double dot = 0;  // softmax: Σ g·y; log_softmax: Σ g
        if (log_space) {
          for (int64_t j = 0; j < sp.n; ++j) dot += static_cast<double>(gr[j * s]);
          for (int64_t j = 0; j < sp.n; ++j)
            out[j * s] = static_cast<T>(gr[j * s] - std::exp(static_cast<double>(yr[j * s])) * dot);
        } else {
          for (int64_t j = 0; j < sp.n; ++j) dot += static_cast<double>(gr[j * s]) * yr[j * s];
          for (int64_t j = 0; j < sp.n; ++j) out[j * s] = static_cast<T>(yr[j * s] * (gr[j * s] - dot));
        }
      }
    });
  });
  return gx;
}

Tensor logsumexp(const Tensor& x_in, int dim) {
  const Tensor x = dense(x_in);
  const DimSplit sp = split_at_dim(x.shape(), dim);
  Tensor out = empty(reduced_shape(x.shape(), {dim}), x.dtype());
  dispatch_float(x.dtype(), "logsumexp", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    parallel_for(sp.rows(), row_grain(sp.n), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) po[r] = static_cast<T>(row_lse(px + sp.row_base(r), sp.n, sp.inner));
    });
  });
  return out;
}

}  // namespace knot::kernels::cpu
