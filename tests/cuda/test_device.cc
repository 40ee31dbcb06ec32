#include <gtest/gtest.h>

#include "backends/cuda/device.h"

namespace imp::cuda {
namespace {

TEST(CudaDevice, ReportsHopperWhenPresent) {
  if (device_count() == 0) GTEST_SKIP() << "no CUDA device visible";
  const DeviceInfo d = device_info(0);
  EXPECT_GE(d.sm_major, 9) << d.name << ": imp's CUDA backend is built for sm_90";
  EXPECT_GT(d.multiprocessors, 0);
  EXPECT_GT(d.l2_bytes, 0);
}

TEST(CudaDevice, CopyBandwidthIsPlausible) {
  if (device_count() == 0) GTEST_SKIP() << "no CUDA device visible";
  const double bw = measure_copy_bandwidth(int64_t(256) << 20);
  EXPECT_GT(bw, 1e11);  // > 100 GB/s on any Hopper part
}

}  // namespace
}  // namespace imp::cuda
