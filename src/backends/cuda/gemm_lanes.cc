#include "backends/cuda/gemm_lanes.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>

#include "backends/cuda/check.h"
#include "common/error.h"

namespace imp::cuda {
namespace {
std::atomic<int> lanes_override{0};
}  // namespace

GemmLanes::~GemmLanes() {
  for (int i = 1; i < kMaxLanes; ++i) {
    if (stream_[i]) cudaStreamSynchronize(stream_[i]);
    if (stream_[i]) cudaStreamDestroy(stream_[i]);
    if (done_[i]) cudaEventDestroy(done_[i]);
  }
  if (forked_) cudaEventDestroy(forked_);
}

void GemmLanes::make(int lane) {
  if (lane < 0 || lane >= kMaxLanes) fail("GEMM lane {} out of range (0 … {})", lane, kMaxLanes - 1);
  if (lane == 0 || stream_[lane]) return;
  IMP_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_[lane], cudaStreamNonBlocking));
  IMP_CUDA_CHECK(cudaEventCreateWithFlags(&done_[lane], cudaEventDisableTiming));
  if (!forked_) IMP_CUDA_CHECK(cudaEventCreateWithFlags(&forked_, cudaEventDisableTiming));
}

void GemmLanes::fork(int n) {
  if (n <= 1) return;
  ++forks_;
  for (int i = 1; i < n; ++i) make(i);
  IMP_CUDA_CHECK(cudaEventRecord(forked_, stream_[0]));
  for (int i = 1; i < n; ++i) IMP_CUDA_CHECK(cudaStreamWaitEvent(stream_[i], forked_, 0));
}

void GemmLanes::join(int n) {
  for (int i = 1; i < n; ++i) {
    IMP_CUDA_CHECK(cudaEventRecord(done_[i], stream_[i]));
    IMP_CUDA_CHECK(cudaStreamWaitEvent(stream_[0], done_[i], 0));
  }
}

cudaStream_t GemmLanes::stream(int lane) {
  make(lane);
  return stream_[lane];
}

int gemm_lanes() {
  if (const int o = lanes_override.load()) return o;
  static const int from_env = [] {
    const char* e = std::getenv("IMP_CUDA_GEMM_LANES");
    const int v = e ? std::atoi(e) : GemmLanes::kMaxLanes;
    return std::clamp(v, 1, GemmLanes::kMaxLanes);
  }();
  return from_env;
}

void set_gemm_lanes(int n) { lanes_override.store(n <= 0 ? 0 : std::clamp(n, 1, GemmLanes::kMaxLanes)); }

}  // namespace imp::cuda
