// Hopper bulk copies (cp.async.bulk, the TMA engine without a tensor map) and the shared-
// memory mbarriers that count their bytes. One thread's instruction moves a contiguous
// global range (16-byte aligned, a multiple of 16 bytes) into shared memory; the copy
// signals completion on an mbarrier by its byte count, and a thread waiting on the
// barrier's phase then sees the data.
//
// Why: a streaming kernel hides HBM latency only with enough bytes in flight per SM
// (cp_async.cuh); registers cap that, per-lane cp.async costs one issue slot per 16 bytes
// (the 4-bit GEMV stalled on the MIO queue with it), a bulk copy moves a whole row segment
// per instruction and holds no registers while in flight.
// Barrier protocol (PTX ISA, "mbarrier"): a phase completes when its expected arrivals have
// arrived and its transaction count is back to zero; waiters name the phase by its parity.
#pragma once

#include <cstdint>

#include "backends/cuda/cp_async.cuh"

namespace imp::cuda {

__device__ __forceinline__ void mbar_init(uint64_t* bar, int arrivals) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_addr(bar)), "r"(arrivals) : "memory");
}
// Makes the initialized barriers visible to the async proxy (the bulk copies); then
// __syncthreads() before any thread uses them.
__device__ __forceinline__ void mbar_init_fence() {
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}
// One arrival that also expects `bytes` more transaction bytes in the current phase.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_addr(bar)), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_addr(bar)) : "memory");
}
// Until the phase of this parity has completed (parity 1 on a fresh barrier returns at
// once: it names the phase before the first).
__device__ __forceinline__ void mbar_wait(uint64_t* bar, uint32_t parity) {
  asm volatile(
      "{\n"
      " .reg .pred done;\n"
      "WAIT:\n"
      " mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      " @!done bra WAIT;\n"
      "}\n" ::"r"(smem_addr(bar)),
      "r"(parity)
      : "memory");
}

// global → shared, `bytes` (multiple of 16, both addresses 16-byte aligned), completion
// counted on bar. Evict-first in L2: weights are read once per step.
__device__ __forceinline__ void bulk_copy_g2s(void* dst, const void* src, uint32_t bytes, uint64_t* bar,
                                              uint64_t l2_policy) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], %4;" ::"r"(
          smem_addr(dst)),
      "l"(src), "r"(bytes), "r"(smem_addr(bar)), "l"(l2_policy)
      : "memory");
}
// A 2-D box of a tensor map (cuTensorMapEncodeTiled; the map in kernel-parameter, constant
// or global memory) → shared memory (128-byte aligned), completion counted on bar by the
// full box's bytes (out-of-bounds elements are zero-filled and counted too). c0 is the
// element index along the inner dimension, c1 the row.
__device__ __forceinline__ void tensor_copy_2d_g2s(void* dst, const void* tensor_map, int c0, int c1, uint64_t* bar,
                                                   uint64_t l2_policy) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.L2::cache_hint"
      " [%0], [%1, {%2, %3}], [%4], %5;" ::"r"(smem_addr(dst)),
      "l"(reinterpret_cast<uint64_t>(tensor_map)), "r"(c0), "r"(c1), "r"(smem_addr(bar)), "l"(l2_policy)
      : "memory");
}

// A 3-D box (c0 inner element, c1, c2): as tensor_copy_2d_g2s. The map's strides need not
// grow with the dimension: gemv_mma_bulk.cu walks (bytes of a unit, rows, units) so that
// shared memory receives a box unit-major while global memory is row-major.
__device__ __forceinline__ void tensor_copy_3d_g2s(void* dst, const void* tensor_map, int c0, int c1, int c2,
                                                   uint64_t* bar, uint64_t l2_policy) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.L2::cache_hint"
      " [%0], [%1, {%2, %3, %4}], [%5], %6;" ::"r"(smem_addr(dst)),
      "l"(reinterpret_cast<uint64_t>(tensor_map)), "r"(c0), "r"(c1), "r"(c2), "r"(smem_addr(bar)), "l"(l2_policy)
      : "memory");
}

__device__ __forceinline__ uint64_t l2_evict_first_policy() {
  uint64_t policy;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
  return policy;
}

}  // namespace imp::cuda
