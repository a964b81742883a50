// Storage allocation and release through the device's allocator.
#include "core/storage.h"

#include "core/allocator.h"

namespace knot {

Storage::Storage(size_t n, Device d) : nbytes(n), device(d) { data = device_alloc(n, d); }

Storage::~Storage() { device_free(data, nbytes, device); }

}  // namespace knot
