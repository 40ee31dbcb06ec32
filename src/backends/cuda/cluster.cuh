// Thread-block clusters (sm_90): barriers across the CTAs of a cluster and stores into
// another CTA's shared memory (DSMEM). Every thread of every CTA in the cluster must
// execute each arrive and wait (the .aligned forms: warp-uniform, no early exits before).
#pragma once

#include <cstdint>

namespace imp::cuda {

// Arrive without ordering memory: "this CTA has started" (a CTA may only touch another's
// shared memory once that one is running: arrive at the top, wait before the first store).
__device__ __forceinline__ void cluster_arrive_relaxed() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.arrive.relaxed.aligned;" ::: "memory");
#endif
}
// Arrive with release semantics: this CTA's earlier (DSMEM) stores are visible after the wait.
__device__ __forceinline__ void cluster_arrive() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.arrive.release.aligned;" ::: "memory");
#endif
}
__device__ __forceinline__ void cluster_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.wait.acquire.aligned;" ::: "memory");
#endif
}

// *p in the shared memory of cluster CTA `rank` (p: this CTA's address of the same variable) = v.
__device__ __forceinline__ void store_shared_remote(float* p, unsigned rank, float v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  const uint32_t local = static_cast<uint32_t>(__cvta_generic_to_shared(p));
  uint32_t remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(local), "r"(rank));
  asm volatile("st.shared::cluster.f32 [%0], %1;" ::"r"(remote), "f"(v) : "memory");
#endif
}

}  // namespace imp::cuda
