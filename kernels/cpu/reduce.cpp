// CPU reductions. Reduced dims that are already innermost and contiguous are summed row by row;
// leading dims are summed column-wise (no transpose); anything else is permuted so the reduced
// dims come last and made contiguous first.
#include "kernels/reduce.h"

#include <algorithm>

#include "core/dispatch.h"
#include "kernels/cpu/loops.h"
#include "ops/views.h"

namespace knot::kernels {

std::vector<int> normalize_dims(const std::vector<int64_t>& dims, int64_t ndim, const char* op) {
  std::vector<int> out;
  if (dims.empty()) {
    for (int d = 0; d < ndim; ++d) out.push_back(d);
    return out;
  }
  for (int64_t d : dims) out.push_back(wrap_dim(d, ndim, op));
  std::sort(out.begin(), out.end());
  KNOT_CHECK(std::adjacent_find(out.begin(), out.end()) == out.end(), "{}: a dim is repeated in the list", op);
  return out;
}

Shape reduced_shape(const Shape& s, const std::vector<int>& dims) {
  Shape out = s;
  for (int d : dims) out[d] = 1;
  return out;
}

namespace cpu {
namespace {
template <typename T> using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
}

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
  Tensor x = x_in;
  if (!(leading || trailing) || !x.is_contiguous()) {
    if (!(leading || trailing)) {
      std::vector<int64_t> order;
      for (int d = 0; d < nd; ++d)
        if (!std::binary_search(dims.begin(), dims.end(), d)) order.push_back(d);
      for (int d : dims) order.push_back(d);
      x = knot::permute(x, order);
      trailing = true;
      leading = false;
    }
    x = knot::contiguous(x.detach());
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

}  // namespace cpu
}  // namespace knot::kernels
