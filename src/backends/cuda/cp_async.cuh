// cp.async (sm_80+): global → shared copies that complete asynchronously, without holding
// registers while they are in flight. A thread commits its copies in groups and waits until
// at most N of its groups are still pending; the data a thread copied is then visible to
// that thread (other threads of the warp or CTA need a barrier as well).
//
// Why: a streaming kernel hides HBM latency only with enough bytes in flight per SM
// (bandwidth × latency ≈ 4.2 TB/s × ~1 µs / 132 SMs ≈ 32 KiB, more under load); register
// double buffering caps that at what the registers hold, a shared-memory ring does not.
#pragma once

#include <cstdint>

namespace imp::cuda {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes, cached in L2 only (.cg: the weights are read once per step).
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(smem_addr(smem)), "l"(gmem) : "memory");
}

// N = 4, 8 or 16 bytes through L1 (scales: .ca is the only mode for sizes below 16).
template <int N>
__device__ __forceinline__ void cp_async_ca(void* smem, const void* gmem) {
  static_assert(N == 4 || N == 8 || N == 16, "cp.async copies 4, 8 or 16 bytes");
  asm volatile("cp.async.ca.shared.global [%0], [%1], %2;" ::"r"(smem_addr(smem)), "l"(gmem), "n"(N) : "memory");
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }

// Until at most N of this thread's committed groups are pending.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

}  // namespace imp::cuda
