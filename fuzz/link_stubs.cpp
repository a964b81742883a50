// Linked into the fuzz targets that build library sources without the rest of the library (all
// of it would turn `make fuzz` from minutes into an hour on 2 cores): core/ refers to three Tensor
// methods of ops/tensor_methods.cpp, models/config.cpp to nn::projection_kinds, core/rng.cpp's
// parallel loops to host_parallel_for (kernels/cpu/threads.cpp). Nothing the targets
// call reaches them (they serve save_safetensors, Tensor::to_vector, CsvTable::select and
// read_projection); should a change make a reader call one, the target aborts here, which
// libFuzzer reports as a crash on the first input.
#include <cstdio>
#include <cstdlib>

#include "core/tensor.h"
#include "core/runtime.h"
#include "nn/projection.h"

namespace knot {
namespace {
[[noreturn]] void not_linked(const char* what) {
  std::fprintf(stderr, "fuzz target: %s is not linked into the fuzz targets (fuzz/link_stubs.cpp)\n", what);
  std::abort();
}
}  // namespace

Tensor Tensor::contiguous() const { not_linked("Tensor::contiguous"); }
Tensor Tensor::to(DType) const { not_linked("Tensor::to(DType)"); }
Tensor Tensor::to(Device) const { not_linked("Tensor::to(Device)"); }
std::vector<std::string> nn::projection_kinds() { not_linked("nn::projection_kinds"); }
void host_parallel_for(int64_t, int64_t, const std::function<void(int64_t, int64_t)>&) {
  not_linked("knot::host_parallel_for");
}

}  // namespace knot
