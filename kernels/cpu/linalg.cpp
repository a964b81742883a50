// CPU GEMM. Two engines:
//
//  * oneDNN (when built with it, KNOT_HAS_ONEDNN): f32 GEMMs with few batches (every Linear and
//    KANLinear projection: ops::linear flattens the rows, so it is one 2-D GEMM) go to oneDNN's
//    matmul primitive, whose JIT'd AVX-512 kernels are ~1.2-1.3x faster than Eigen's here and which
//    runs Intel AMX tiles when the matmul precision is bf16 (knot::set_matmul_precision): the
//    operands are rounded to bfloat16 (round to nearest even), the products are accumulated in f32
//    and the result is f32 -- what PyTorch's CPU autocast does for its linear layers. A transpose
//    flag or a strided view becomes strides in oneDNN's memory descriptor, not a copy. One primitive
//    is made per call (oneDNN's primitive cache makes that ~5 us) and run once per batch.
//  * Eigen: f64 (gradient checks need it exact), many small batches (attention's per-head GEMMs,
//    spread over threads, one single-threaded GEMM each), views oneDNN does not take (neither inner
//    stride 1, broadcast zero strides), and builds without oneDNN. Each operand is an Eigen::Map
//    with runtime strides; a transpose flag becomes .transpose() on the map.
#include "kernels/cpu/gcc12_avx512.h"  // first: Eigen's f64 GEMM is instantiated here
#include <Eigen/Core>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#if KNOT_HAS_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif
#if defined(__AVX512BF16__)
#include <immintrin.h>
#endif

#include "core/dispatch.h"
#include "kernels/cpu/loops.h"
#include "kernels/linalg.h"

namespace knot {

// ---- matmul precision (declared in kernels/linalg.h) ------------------------------------------------
namespace {
MatmulPrecision initial_precision() {
  const char* s = std::getenv("KNOT_MATMUL_PRECISION");
  if (!s || !*s) return MatmulPrecision::highest;
  try {
    return parse_matmul_precision(s);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "knot: ignoring KNOT_MATMUL_PRECISION: %s\n", e.what());
    return MatmulPrecision::highest;
  }
}
std::atomic<MatmulPrecision> g_precision{initial_precision()};
}  // namespace

MatmulPrecision parse_matmul_precision(const std::string& s) {
  if (s == "highest" || s == "f32") return MatmulPrecision::highest;
  if (s == "bf16") return MatmulPrecision::bf16;
  KNOT_FAIL("unknown matmul precision '{}' (expected 'highest' or 'bf16')", s);
}
const char* matmul_precision_name(MatmulPrecision p) { return p == MatmulPrecision::bf16 ? "bf16" : "highest"; }
void set_matmul_precision(MatmulPrecision p) { g_precision.store(p); }
MatmulPrecision matmul_precision() { return g_precision.load(); }
bool onednn_available() { return KNOT_HAS_ONEDNN != 0; }

namespace kernels::cpu {
namespace {

template <typename T>
using MatMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0,
                          Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>>;
template <typename T>
using OutMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;

// One stored operand: a (rows x cols) matrix with (row stride, col stride), per batch at base +
// offset[i]; `trans` says the GEMM reads its transpose.
struct Operand {
  const void* base;
  int64_t rows, cols, rs, cs;
  bool trans;
  std::vector<int64_t> offset;  // element offset of each batch
};

#if KNOT_HAS_ONEDNN
dnnl::engine& dnnl_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// A one-row or one-column matrix's other stride is never used: make it the dense one, so that such
// views (e.g. a sliced row) pass the layout check below.
Operand normalized(Operand o) {
  if (o.rows == 1) o.rs = o.cs == 1 ? o.cols : 1;
  if (o.cols == 1) o.cs = o.rs == 1 ? o.rows : 1;
  return o;
}

// oneDNN takes a plain matrix whose row or column stride is 1 (and the other >= that extent).
bool dnnl_layout_ok(const Operand& o) {
  return (o.cs == 1 && o.rs >= o.cols) || (o.rs == 1 && o.cs >= o.rows);
}

// The logical (after transpose) dims and strides of an operand, as oneDNN wants them.
dnnl::memory::desc logical_desc(const Operand& o, dnnl::memory::data_type dt) {
  if (!o.trans) return dnnl::memory::desc({o.rows, o.cols}, dt, dnnl::memory::dims{o.rs, o.cs});
  return dnnl::memory::desc({o.cols, o.rows}, dt, dnnl::memory::dims{o.cs, o.rs});
}

// f32 -> bf16, round to nearest even (NaN stays NaN).
uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// Every batch of a strided f32 operand rounded to bf16 into a dense row-major (rows x cols) buffer
// per batch. Uninitialised (every element is written below): no zero-fill pass over the buffer.
std::unique_ptr<uint16_t[]> pack_bf16(const Operand& o) {
  const int64_t per = o.rows * o.cols, nb = static_cast<int64_t>(o.offset.size());
  std::unique_ptr<uint16_t[]> out(new uint16_t[static_cast<size_t>(per * nb)]);
  const float* src = static_cast<const float*>(o.base);
  parallel_for(nb * o.rows, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(1, o.cols)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t i = r / o.rows, row = r % o.rows;
      const float* s = src + o.offset[static_cast<size_t>(i)] + row * o.rs;
      uint16_t* d = out.get() + i * per + row * o.cols;
      if (o.cs == 1) {
        int64_t c = 0;
#if defined(__AVX512BF16__)
        // 16 at a time with VCVTNEPS2BF16 (round to nearest even, as to_bf16; it reads f32
        // denormals as zero, which changes nothing a bf16 product could resolve).
        for (; c + 16 <= o.cols; c += 16) {
          const __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(s + c));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + c), reinterpret_cast<const __m256i&>(h));
        }
#endif
        for (; c < o.cols; ++c) d[c] = to_bf16(s[c]);
      } else {
        for (int64_t c = 0; c < o.cols; ++c) d[c] = to_bf16(s[c * o.cs]);
      }
    }
  });
  return out;
}

// C (per batch M x N, dense) = op(A) op(B) through one oneDNN matmul primitive. Returns false when
// oneDNN declines the problem (the caller then uses Eigen).
bool dnnl_gemm(const Operand& A_in, const Operand& B_in, float* C, int64_t M, int64_t N, int64_t nb, bool bf16) {
  using dt = dnnl::memory::data_type;
  const Operand A = normalized(A_in), B = normalized(B_in);
  if (!bf16 && (!dnnl_layout_ok(A) || !dnnl_layout_ok(B))) return false;
  try {
    dnnl::engine& eng = dnnl_engine();
    dnnl::stream stream(eng);
    const dnnl::memory::desc cd({M, N}, dt::f32, dnnl::memory::dims{N, 1});
    if (!bf16) {
      const auto ad = logical_desc(A, dt::f32), bd = logical_desc(B, dt::f32);
      // A scratchpad of our own: blocks of one GEMM (dnnl_gemm_rows) run the same cached primitive
      // on several threads at once.
      dnnl::primitive_attr attr;
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(ad, bd, cd), attr, eng);
      dnnl::matmul prim(pd);
      dnnl::memory scratch(pd.scratchpad_desc(), eng);
      const float* pa = static_cast<const float*>(A.base);
      const float* pb = static_cast<const float*>(B.base);
      for (int64_t i = 0; i < nb; ++i) {
        dnnl::memory am(ad, eng, const_cast<float*>(pa + A.offset[static_cast<size_t>(i)]));
        dnnl::memory bm(bd, eng, const_cast<float*>(pb + B.offset[static_cast<size_t>(i)]));
        dnnl::memory cm(cd, eng, C + i * M * N);
        prim.execute(stream, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm},
                              {DNNL_ARG_SCRATCHPAD, scratch}});
      }
      stream.wait();
      return true;
    }
    // bf16: dense row-major bf16 copies of the stored matrices; the transposes stay strides.
    Operand a16 = A, b16 = B;
    a16.rs = A.cols, a16.cs = 1, b16.rs = B.cols, b16.cs = 1;
    const auto ad = logical_desc(a16, dt::bf16), bd = logical_desc(b16, dt::bf16);
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(ad, bd, cd), eng);
    const auto abuf = pack_bf16(A), bbuf = pack_bf16(B);
    dnnl::matmul prim(pd);
    for (int64_t i = 0; i < nb; ++i) {
      dnnl::memory am(ad, eng, abuf.get() + i * A.rows * A.cols);
      dnnl::memory bm(bd, eng, bbuf.get() + i * B.rows * B.cols);
      dnnl::memory cm(cd, eng, C + i * M * N);
      prim.execute(stream, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
    }
    stream.wait();
    return true;
  } catch (const dnnl::error& e) {
    if (bf16) {
      static std::atomic<bool> warned{false};
      if (!warned.exchange(true))
        std::fprintf(stderr,
                     "knot: matmul precision bf16 is not available on this CPU (oneDNN: %s); using f32 GEMMs\n",
                     e.what());
    }
    return false;
  }
}

// Logical rows [r0, r1) of an operand (of op(stored), i.e. stored columns when transposed).
Operand row_block(Operand o, int64_t r0, int64_t r1) {
  if (!o.trans) {
    o.rows = r1 - r0;
    o.offset[0] += r0 * o.rs;
  } else {
    o.cols = r1 - r0;
    o.offset[0] += r0 * o.cs;
  }
  return o;
}

// One f32 GEMM (nb = 1) as blocks of C's rows on the thread pool, one single-threaded oneDNN
// matmul each (parallel_gemm_rows). False when oneDNN declines (the caller then uses Eigen).
bool dnnl_gemm_rows(const Operand& A, const Operand& B, float* C, int64_t M, int64_t N, int64_t K) {
  if (!dnnl_layout_ok(normalized(A)) || !dnnl_layout_ok(normalized(B))) return false;
  std::atomic<bool> ok{true};
  parallel_gemm_rows(M, N, K, [&](int64_t r0, int64_t r1) {
    if (ok.load(std::memory_order_relaxed) && !dnnl_gemm(row_block(A, r0, r1), B, C + r0 * N, r1 - r0, N, 1, false))
      ok.store(false, std::memory_order_relaxed);
  });
  return ok.load();
}
#endif

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
    if (M == 0 || N == 0) return;
    if (Ka == 0) {
      std::fill(po, po + nb * M * N, T(0));
      return;
    }
#if KNOT_HAS_ONEDNN
    if constexpr (std::is_same_v<T, float>) {
      if (nb < num_threads() || nb == 1) {
        Operand A{pa, ar, ac, a.stride(-2), a.stride(-1), ta, {}}, B{pb, br, bc, b.stride(-2), b.stride(-1), tb, {}};
        for (int64_t i = 0; i < nb; ++i) {
          A.offset.push_back(a.offset() + gemm_batch_offset(i, batch, as));
          B.offset.push_back(b.offset() + gemm_batch_offset(i, batch, bs));
        }
        const bool bf16 = matmul_precision() == MatmulPrecision::bf16;
        if (nb == 1 && !bf16 ? dnnl_gemm_rows(A, B, po, M, N, Ka) : dnnl_gemm(A, B, po, M, N, nb, bf16)) return;
      }
    }
#endif
    const Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic> sa(a.stride(-2), a.stride(-1)), sb(b.stride(-2), b.stride(-1));
    auto one = [&](int64_t i) {
      MatMap<T> A(pa + a.offset() + gemm_batch_offset(i, batch, as), ar, ac, sa);
      MatMap<T> B(pb + b.offset() + gemm_batch_offset(i, batch, bs), br, bc, sb);
      OutMap<T> C(po + i * M * N, M, N);
      if (!ta && !tb) C.noalias() = A * B;
      else if (ta && !tb) C.noalias() = A.transpose() * B;
      else if (!ta && tb) C.noalias() = A * B.transpose();
      else C.noalias() = A.transpose() * B.transpose();
    };
    if (nb >= num_threads() && nb > 1) {
      parallel_chunks(nb, one);  // one single-threaded GEMM per batch
    } else {
      for (int64_t i = 0; i < nb; ++i) one(i);
    }
  });
  return out;
}

}  // namespace kernels::cpu
}  // namespace knot
