// Shared by the CPU KAN kernels (kernels/cpu/spline.cpp: the feature-matrix driver, the dense
// B-spline path and the generic basis; kernels/cpu/spline_local.cpp: the local B-spline path).
// Private to kernels/cpu/.
#pragma once

#ifdef __AVX512F__
// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own _mm512_undefined_*() once
// inlined (GCC bug 105593, fixed in 13); the state must cover the header's text, which Eigen
// includes first.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif
#include <Eigen/Core>

#include <algorithm>
#include <type_traits>

#include "core/allocator.h"
#include "kernels/spline.h"

namespace knot::kernels::cpu::spline_detail {

template <typename T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using Map = Eigen::Map<RowMat<T>>;
template <typename T>
using CMap = Eigen::Map<const RowMat<T>>;

// Scratch memory through knot's host allocator, so cpu_peak_bytes() (tests, bench/bench_kan.cpp)
// counts the kernels' work buffers too. Not zero-initialised unless asked.
template <typename T>
class Scratch {
 public:
  Scratch() = default;
  explicit Scratch(size_t n, bool zero = false) { resize(n, zero); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  Scratch(Scratch&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  ~Scratch() { release(); }
  void resize(size_t n, bool zero = false) {
    release();
    n_ = n;
    if (n) p_ = static_cast<T*>(cpu_alloc(n * sizeof(T)));
    if (zero) std::fill(p_, p_ + n_, T(0));
  }
  T* data() { return p_; }
  const T* data() const { return p_; }
  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  T& operator[](size_t i) { return p_[i]; }
  const T& operator[](size_t i) const { return p_[i]; }

 private:
  void release() {
    if (p_) cpu_free(p_, n_ * sizeof(T));
    p_ = nullptr;
  }
  T* p_ = nullptr;
  size_t n_ = 0;
};

// Calls f(std::integral_constant<int, K>) with K = k for the common orders 1 … 3, else K = −1
// (runtime k). See basis::bspline_local_inv.
template <typename F>
void with_order(int k, F&& f) {
  switch (k) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    default: return f(std::integral_constant<int, -1>{});
  }
}


// The local B-spline path (kernels/cpu/spline_local.cpp), for T = float and double: y (N, out) =
// silu(x)·base_wᵀ + Σ over each input's k+1 non-zero B-splines; base_w may be null (no base branch).
template <typename T>
void bspline_local_fwd(const SplineDims& d, const T* x, const T* grid, const T* base_w, const T* coeff, T* y);
// Its backward: any of dx (N, in), dbase (out, in), dcoeff (out, in, nb) may be null (not wanted).
template <typename T>
void bspline_local_bwd(const SplineDims& d, const T* x, const T* grid, const T* base_w, const T* coeff, const T* g,
                       T* dx, T* dbase, T* dcoeff);

}  // namespace knot::kernels::cpu::spline_detail
