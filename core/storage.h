// Storage: one allocation on one device, shared by every view of it. Its version counter is
// bumped by every in-place write, so autograd can tell that a saved tensor was modified.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/device.h"

namespace knot {

struct Storage {
  Storage(size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data = nullptr;
  size_t nbytes = 0;
  Device device;
  uint64_t version = 0;
};

}  // namespace knot
