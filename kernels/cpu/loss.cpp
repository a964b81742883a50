// CPU cross-entropy (see kernels/loss.h). Targets are checked in a serial pre-pass (an exception
// must not leave an OpenMP region), then rows run in parallel: one online max/Σexp pass for lse
// (kernels/nn_math.h), and in backward one pass writing softmax − smoothed target. f32 rows with
// finite logits take the vectorised path instead (max, then Σexp in f32 lanes with Eigen's exp,
// Σx in f64 lanes: kernels/cpu/row_math.h); a row holding ±inf or NaN keeps the online path, which
// defines those cases (inf logits give lse = inf, NaN poisons the row).
#include "kernels/cpu/gcc12_avx512.h"  // first: row_math.h pulls in Eigen
#include "kernels/loss.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "core/dispatch.h"
#include "kernels/cpu/loops.h"
#include "kernels/cpu/row_math.h"
#include "kernels/nn_math.h"

namespace knot::kernels::cpu {
namespace {

int64_t row_grain(int64_t row_len) { return std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(row_len, 1)); }

// Target of each row as int64 (the op layer guarantees M values).
std::vector<int64_t> read_targets(const Tensor& target) {
  return dispatch_index(target.dtype(), "cross_entropy", [&](auto tag) {
    using I = decltype(tag);
    const auto v = target.to_vector<I>();
    return std::vector<int64_t>(v.begin(), v.end());
  });
}

}  // namespace

CrossEntropyFwd cross_entropy_fwd(const Tensor& logits_in, const Tensor& target, int64_t classes, int64_t ignore_index,
                                  double eps) {
  const Tensor x = dense(logits_in);
  const int64_t m = classes > 0 ? x.numel() / classes : 0;
  const std::vector<int64_t> t = read_targets(target);
  CrossEntropyFwd out{empty({m}, x.dtype()), empty({m}, x.dtype()), 0};
  for (int64_t r = 0; r < m; ++r) {
    if (t[r] == ignore_index) continue;
    KNOT_CHECK(t[r] >= 0 && t[r] < classes,
               "cross_entropy: target {} at position {} is out of range for {} classes (ignore_index is {})", t[r],
               r, classes, ignore_index);
    ++out.count;
  }
  dispatch_float(x.dtype(), "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* ploss = out.loss.data<T>();
    T* plse = out.lse.data<T>();
    parallel_for(m, row_grain(classes), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = px + r * classes;
        double sum_x = 0, lse = 0;
        bool fast = false;
        if constexpr (std::is_same_v<T, float>) {
          sum_x = rowmath::sum(xr, classes);
          if (std::isfinite(sum_x) && classes > 0) {  // no ±inf or NaN in the row
            const float mx = rowmath::max(xr, classes);
            lse = static_cast<double>(mx) + std::log(static_cast<double>(rowmath::sum_exp_shifted(xr, classes, mx)));
            fast = true;
          }
        }
        if (!fast) {
          math::OnlineLse<double> st;
          sum_x = 0;
          for (int64_t c = 0; c < classes; ++c) {
            math::online_lse_add(st, static_cast<double>(xr[c]));
            sum_x += xr[c];
          }
          lse = math::online_lse_result(st);
        }
        plse[r] = static_cast<T>(lse);
        if (t[r] == ignore_index) {
          ploss[r] = T(0);
        } else {
          ploss[r] = static_cast<T>(
              math::cross_entropy_row<double>(lse, xr[t[r]], sum_x / static_cast<double>(classes), eps));
        }
      }
    });
  });
  return out;
}

Tensor cross_entropy_bwd(const Tensor& logits_in, const Tensor& target, const Tensor& lse_in, const Tensor& row_grad,
                         int64_t classes, int64_t ignore_index, double eps) {
  const Tensor x = dense(logits_in);
  const Tensor lse = dense(lse_in);
  const Tensor w = dense(row_grad);
  const int64_t m = classes > 0 ? x.numel() / classes : 0;
  const std::vector<int64_t> t = read_targets(target);
  Tensor gx = empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* plse = lse.data<T>();
    const T* pw = w.data<T>();
    T* pg = gx.data<T>();
    const double inv_c = 1.0 / static_cast<double>(classes);
    parallel_for(m, row_grain(classes), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        T* gr = pg + r * classes;
        if (t[r] == ignore_index) {
          std::fill(gr, gr + classes, T(0));
          continue;
        }
        const T* xr = px + r * classes;
        const double l = plse[r], wr = pw[r];
        if constexpr (std::is_same_v<T, float>) {
          if (std::isfinite(l)) {
            // g_c = w·(exp(x_c − lse) − ε/C), then the target's extra −w·(1 − ε).
            rowmath::exp_shifted(xr, gr, classes, static_cast<float>(l));
            const float a = static_cast<float>(wr), b = static_cast<float>(wr * eps * inv_c);
            rowmath::MapF(gr, classes) = a * rowmath::MapF(gr, classes) - b;
            gr[t[r]] = static_cast<T>(wr * math::cross_entropy_grad<double>(xr[t[r]], l, true, eps, inv_c));
            continue;
          }
        }
        for (int64_t c = 0; c < classes; ++c)
          gr[c] = static_cast<T>(wr * math::cross_entropy_grad<double>(xr[c], l, c == t[r], eps, inv_c));
      }
    });
  });
  return gx;
}

}  // namespace knot::kernels::cpu
