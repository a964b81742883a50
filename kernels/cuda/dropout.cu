// CUDA dropout (see kernels/dropout.h): the mask bit of element i is dropout_keep(seed, draw, i, p),
// the same KNOT_HD Philox function the CPU loop calls, with i the row-major index of the
// contiguous input plus the offset, so CPU and GPU drop the same elements for the same seed and draw.
#include "kernels/cuda/common.cuh"
#include "kernels/dropout.h"

namespace knot::kernels::cuda {
namespace {

using namespace knot::cuda_detail;

template <typename T>
__global__ void masked_scale_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t n, uint64_t seed,
                                    uint64_t draw, uint64_t off, float p, T scale) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = dropout_keep(seed, draw, off + static_cast<uint64_t>(i), p) ? x[i] * scale : T(0);
}

Tensor masked_scale(const Tensor& x_in, double p, uint64_t seed, uint64_t draw, uint64_t off) {
  const Tensor x = dense(x_in);  // element i must be the row-major index, whatever the layout
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  const int64_t n = x.numel();
  if (n == 0) return y;
  const int dev = x.device().index;
  cudaStream_t stream = stream_for(dev, "dropout");
  dispatch_float(x.dtype(), "dropout", [&](auto tag) {
    using T = decltype(tag);
    masked_scale_kernel<T><<<grid_for(n, dev), kThreads, 0, stream>>>(x.data<T>(), y.data<T>(), n, seed, draw, off,
                                                                      static_cast<float>(p),
                                                                      static_cast<T>(1.0 / (1.0 - p)));
  });
  KNOT_CUDA_LAUNCH_CHECK("dropout");
  return y;
}

}  // namespace

Tensor dropout_fwd(const Tensor& x, double p, uint64_t seed, uint64_t draw, uint64_t offset) {
  return masked_scale(x, p, seed, draw, offset);
}
Tensor dropout_bwd(const Tensor& g, double p, uint64_t seed, uint64_t draw, uint64_t offset) {
  return masked_scale(g, p, seed, draw, offset);
}

}  // namespace knot::kernels::cuda
