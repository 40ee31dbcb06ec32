// Side-by-side prefill GEMMs of one fused hook (Q·K·V, gate·up) on streams of their own
// ("lanes"), for the FP8 W8A8 GEMMs (cuBLASLt, one matrix per call).
//
// Why: one stream runs one GEMM at a time, and a GEMM ends in a partial wave. At 512 tokens
// an 8B model's K and V projections (1024 rows) are 32 output tiles of 128×128 each — a
// quarter of an H100's 132 SMs for a whole wave — and gate and up (14336 rows) each end in
// a part-filled wave. On lanes, the next GEMM's CTAs take the SMs the previous one leaves
// idle, as one GEMM over the concatenated weights would, without moving the weights into one
// allocation. Measured on an H100 (2026-12-07, synthetic llama3.1-8b, 512-token prefill):
// FP8 13.3 ms with lanes against 14.2 ms without (the GEMMs 8.0 against 9.0 ms); BF16 16.7
// against 16.1 ms — cuBLAS's BF16 kernels there (nvjet 256×128 "coopA") lost with company,
// so BF16 GEMMs stay on one stream. The fused-dequantization GEMM groups its parts in one
// launch instead (gemm_dequant_group).
//
// Lane 0 is the backend's stream; lanes 1 … kMaxLanes − 1 have their own stream and
// fork/join events, made on first use.
// fork(n) makes lanes 1 … n − 1 wait for everything enqueued on lane 0 so far; join(n)
// makes lane 0 wait for everything enqueued on them. Eager prefill only (not in a captured
// graph). The results are the same bits as on one stream: each GEMM is the same call.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace imp::cuda {

class GemmLanes {
 public:
  static constexpr int kMaxLanes = 3;
  explicit GemmLanes(cudaStream_t main) : stream_{main} {}
  ~GemmLanes();
  GemmLanes(const GemmLanes&) = delete;
  GemmLanes& operator=(const GemmLanes&) = delete;

  void fork(int n);
  void join(int n);
  cudaStream_t stream(int lane);
  int64_t forks() const { return forks_; }  // fork(n > 1) calls: hooks that ran side by side

 private:
  void make(int lane);
  cudaStream_t stream_[kMaxLanes] = {};
  cudaEvent_t forked_ = nullptr;
  cudaEvent_t done_[kMaxLanes] = {};
  int64_t forks_ = 0;
};

// Lanes a hook's GEMMs may use: IMP_CUDA_GEMM_LANES (1 = one stream, as before; read once),
// default kMaxLanes. set_gemm_lanes for tests and benchmarks (0 = back to the environment).
int gemm_lanes();
void set_gemm_lanes(int n);

}  // namespace imp::cuda
