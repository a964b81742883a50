// CUDA stub for the runtime (device query): compiled when kernels/cuda/runtime.cu is not.
#include "core/device.h"

namespace knot {

bool cuda_available() { return false; }
int cuda_device_count() { return 0; }

}  // namespace knot
