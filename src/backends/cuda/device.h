// CUDA device discovery and the two measured ceilings every GPU benchmark is held to.
#pragma once

#include <cstdint>
#include <string>

namespace imp::cuda {

struct DeviceInfo {
  int index = -1;
  std::string name;
  int sm_major = 0, sm_minor = 0;
  int multiprocessors = 0;
  int64_t global_memory_bytes = 0;
  int64_t l2_bytes = 0;
};

// Number of visible CUDA devices; 0 (never an error) when there is no driver or GPU.
int device_count();
DeviceInfo device_info(int index);
// Device-to-device copy bandwidth in bytes/s (bytes read + bytes written), measured over
// a buffer many times the L2, median of several copies.
double measure_copy_bandwidth(int64_t bytes = int64_t(1) << 30);

}  // namespace imp::cuda
