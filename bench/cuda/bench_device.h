// What the CUDA benchmarks share: the device and the ceiling they print first, and the timing.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "backends/cuda/check.h"
#include "backends/cuda/device.h"

namespace imp::cuda {

// Prints device 0 and its measured device-to-device copy bandwidth (bytes read + written);
// returns that bandwidth in GB/s, or 0 after a message naming `tool` when no GPU is visible.
inline double print_device_and_copy_bandwidth(const char* tool) {
  if (device_count() == 0) {
    std::fprintf(stderr, "%s: no CUDA device visible\n", tool);
    return 0.0;
  }
  const DeviceInfo dev = device_info(0);
  const double gbps = measure_copy_bandwidth() / 1e9;
  std::printf("device: %s (sm_%d%d, %d SMs, L2 %.0f MB)\n", dev.name.c_str(), dev.sm_major, dev.sm_minor,
              dev.multiprocessors, double(dev.l2_bytes) / 1e6);
  std::printf("copy bandwidth (read+write): %.1f GB/s\n", gbps);
  return gbps;
}

// Median over `runs` samples (after 5 warm-up launches) of one launch of `exec`, in µs per
// `per_launch` operations.
inline double median_graph_us(cudaGraphExec_t exec, cudaStream_t stream, int runs, int per_launch) {
  cudaEvent_t start, stop;
  IMP_CUDA_CHECK(cudaEventCreate(&start));
  IMP_CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<float> samples;
  for (int it = 0; it < runs + 5; ++it) {
    IMP_CUDA_CHECK(cudaEventRecord(start, stream));
    IMP_CUDA_CHECK(cudaGraphLaunch(exec, stream));
    IMP_CUDA_CHECK(cudaEventRecord(stop, stream));
    IMP_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    IMP_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    if (it >= 5) samples.push_back(ms / float(per_launch));  // first 5 warm up
  }
  IMP_CUDA_CHECK(cudaEventDestroy(start));
  IMP_CUDA_CHECK(cudaEventDestroy(stop));
  std::sort(samples.begin(), samples.end());
  return double(samples[samples.size() / 2]) * 1e3;
}

}  // namespace imp::cuda
