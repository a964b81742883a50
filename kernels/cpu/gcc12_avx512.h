// Include first (before any header that pulls in <immintrin.h>, Eigen included) in a file that
// instantiates Eigen's double-precision GEMM or uses AVX-512 intrinsics (philox16.h): with -march=native on an AVX-512 machine, GCC 12's
// avx512fintrin.h trips -Wmaybe-uninitialized on its own _mm512_undefined_*() once inlined (GCC
// bug 105593, fixed in GCC 13). A false positive inside the compiler's headers, silenced for the
// including file only (the state has to be set before those headers are read, so no push/pop).
#pragma once
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
