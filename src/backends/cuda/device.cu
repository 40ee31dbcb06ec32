#include "backends/cuda/device.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

#include "backends/cuda/check.h"

namespace imp::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

DeviceInfo device_info(int index) {
  cudaDeviceProp p{};
  IMP_CUDA_CHECK(cudaGetDeviceProperties(&p, index));
  DeviceInfo d;
  d.index = index;
  d.name = p.name;
  d.sm_major = p.major;
  d.sm_minor = p.minor;
  d.multiprocessors = p.multiProcessorCount;
  d.global_memory_bytes = int64_t(p.totalGlobalMem);
  d.l2_bytes = p.l2CacheSize;
  return d;
}

double measure_copy_bandwidth(int64_t bytes) {
  void *a = nullptr, *b = nullptr;
  IMP_CUDA_CHECK(cudaMalloc(&a, size_t(bytes)));
  IMP_CUDA_CHECK(cudaMalloc(&b, size_t(bytes)));
  IMP_CUDA_CHECK(cudaMemset(a, 1, size_t(bytes)));
  cudaEvent_t start, stop;
  IMP_CUDA_CHECK(cudaEventCreate(&start));
  IMP_CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<float> ms;
  for (int i = 0; i < 12; ++i) {
    IMP_CUDA_CHECK(cudaEventRecord(start));
    IMP_CUDA_CHECK(cudaMemcpyAsync(b, a, size_t(bytes), cudaMemcpyDeviceToDevice));
    IMP_CUDA_CHECK(cudaEventRecord(stop));
    IMP_CUDA_CHECK(cudaEventSynchronize(stop));
    float t = 0;
    IMP_CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
    if (i >= 2) ms.push_back(t);  // first copies warm up
  }
  std::sort(ms.begin(), ms.end());
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaFree(a);
  cudaFree(b);
  return 2.0 * double(bytes) / (double(ms[ms.size() / 2]) * 1e-3);
}

}  // namespace imp::cuda
