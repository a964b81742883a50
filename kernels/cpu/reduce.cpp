// CPU reductions. Reduced dims that are already innermost and contiguous are summed row by row;
// leading dims are summed column-wise (no transpose); anything else is permuted so the reduced
// dims come last and made contiguous first. var always works on rows (reduced dims last);
// max/min walk inner-strided rows of the (outer, n, inner) split, so no transpose is needed.
#include "kernels/reduce.h"

#include <algorithm>
#include <cmath>

#include "core/dispatch.h"
#include "kernels/cpu/loops.h"

namespace knot::kernels {

namespace cpu {
namespace {
template <typename T> using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

// Row-wise work split: about kParallelGrain elements per thread chunk.
int64_t row_grain(int64_t row_len) { return std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(row_len, 1)); }
}  // namespace

Tensor sum(const Tensor& x_in, const std::vector<int>& dims) {
  const Shape out_shape = reduced_shape(x_in.shape(), dims);
  Tensor out = empty(out_shape, x_in.dtype());
  const int nd = static_cast<int>(x_in.dim());
  // Are the reduced dims a leading block [0, k) or a trailing block [nd-k, nd)?
  const int k = static_cast<int>(dims.size());
  bool leading = true, trailing = true;
  for (int i = 0; i < k; ++i) {
    leading &= dims[i] == i;
    trailing &= dims[i] == nd - k + i;
  }
  Tensor x = x_in.detach();  // kernels record no graph
  if (!(leading || trailing) || !x.is_contiguous()) {
    if (!(leading || trailing)) {
      std::vector<int64_t> order;
      for (int d = 0; d < nd; ++d)
        if (!std::binary_search(dims.begin(), dims.end(), d)) order.push_back(d);
      for (int d : dims) order.push_back(d);
      x = permuted(x, order);
      trailing = true;
      leading = false;
    }
    x = dense(x);
  }
  int64_t r = 1;
  for (int d : dims) r *= x_in.shape()[d];
  const int64_t m = r == 0 ? out.numel() : x.numel() / std::max<int64_t>(r, 1);
  dispatch_all(x.dtype(), "sum", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    if (r == 0) {
      std::fill(po, po + out.numel(), T(0));
    } else if (trailing) {  // out[i] = Σ_j x[i, j]
      parallel_for(m, std::max<int64_t>(1, kParallelGrain / r), [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          Acc<T> acc = 0;
          const T* row = px + i * r;
          for (int64_t j = 0; j < r; ++j) acc += row[j];
          po[i] = static_cast<T>(acc);
        }
      });
    } else {  // leading: out[j] = Σ_i x[i, j], columns split across threads
      parallel_for(m, std::max<int64_t>(1, kParallelGrain / r), [&](int64_t j0, int64_t j1) {
        std::vector<Acc<T>> acc(static_cast<size_t>(j1 - j0), 0);
        for (int64_t i = 0; i < r; ++i) {
          const T* row = px + i * m;
          for (int64_t j = j0; j < j1; ++j) acc[j - j0] += row[j];
        }
        for (int64_t j = j0; j < j1; ++j) po[j] = static_cast<T>(acc[j - j0]);
      });
    }
  });
  return out;
}

Tensor var(const Tensor& x_in, const std::vector<int>& dims, int64_t correction) {
  Tensor out = empty(reduced_shape(x_in.shape(), dims), x_in.dtype());
  int64_t r = 1;
  for (int d : dims) r *= x_in.shape()[d];
  const Tensor x = reduced_dims_last(x_in, dims);
  const int64_t m = out.numel();
  const double denom = static_cast<double>(r - correction);
  dispatch_float(x.dtype(), "var", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    // Two passes over a row that is in cache anyway: no cancellation from E[x²] − E[x]².
    parallel_for(m, row_grain(r), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const T* row = px + i * r;
        double s = 0;
        for (int64_t j = 0; j < r; ++j) s += row[j];
        const double mu = r > 0 ? s / static_cast<double>(r) : 0.0;
        double ss = 0;
        for (int64_t j = 0; j < r; ++j) {
          const double d = static_cast<double>(row[j]) - mu;
          ss += d * d;
        }
        po[i] = static_cast<T>(r == 0 ? NAN : ss / denom);
      }
    });
  });
  return out;
}

ValuesIndices max_min(const Tensor& x_in, int dim, bool take_max) {
  const char* op = take_max ? "max" : "min";
  const Tensor x = dense(x_in);
  const DimSplit sp = split_at_dim(x.shape(), dim);
  KNOT_CHECK(sp.n > 0, "{}: cannot reduce over dim {} of size 0 in {}", op, dim, shape_str(x.shape()));
  const Shape out_shape = reduced_shape(x.shape(), {dim});
  ValuesIndices out{empty(out_shape, x.dtype()), empty(out_shape, DType::i64)};
  int64_t* pi = out.indices.data<int64_t>();
  dispatch_all(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* pv = out.values.data<T>();
    parallel_for(sp.rows(), row_grain(sp.n), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* row = px + sp.row_base(r);
        T best = row[0];
        int64_t arg = 0;
        for (int64_t j = 1; j < sp.n && best == best; ++j) {  // stop at the first NaN: it wins
          const T v = row[j * sp.inner];
          // Strict comparisons keep the first index of ties; v != v picks up a NaN.
          if ((take_max ? v > best : v < best) || v != v) {
            best = v;
            arg = j;
          }
        }
        // Output element r of (outer, 1, inner) is exactly r.
        pv[r] = best;
        pi[r] = arg;
      }
    });
  });
  return out;
}

Tensor max_min_bwd(const Tensor& g_in, const Tensor& idx_in, const Shape& x_shape, int dim) {
  const Tensor g = dense(g_in);
  const Tensor idx = dense(idx_in);
  Tensor gx = zeros(x_shape, g.dtype());
  const DimSplit sp = split_at_dim(x_shape, dim);
  const int64_t* pi = idx.data<int64_t>();
  dispatch_float(g.dtype(), "max", [&](auto tag) {
    using T = decltype(tag);
    const T* pg = g.data<T>();
    T* px = gx.data<T>();
    parallel_for(sp.rows(), kParallelGrain, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) px[sp.row_base(r) + pi[r] * sp.inner] = pg[r];
    });
  });
  return gx;
}

}  // namespace cpu
}  // namespace knot::kernels
