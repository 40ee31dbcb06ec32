// Device side of the decode step's weight prefetch (l2_prefetch.h): the ranges are one
// byte sequence cut into equal slices, one per block of the launch that issues them; a
// block's threads issue its slice as bulk prefetches of at most kL2PrefetchPiece bytes.
// cp.async.bulk.prefetch.L2 holds no register or shared memory while in flight and needs
// no wait: the block goes on with its own work.
#pragma once

#include <cstdint>

#include "backends/cuda/l2_prefetch.h"

namespace imp::cuda {

constexpr uint32_t kL2PrefetchPiece = 16 * 1024;

__device__ __forceinline__ void bulk_prefetch_l2(const void* p, uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(p), "r"(bytes) : "memory");
#endif
}

// Block `block` of n_blocks; `lane` of the n_lanes threads that issue it. Slices are
// multiples of 16 bytes, so every address and size stays 16-byte aligned (the ranges are).
__device__ __forceinline__ void l2_prefetch_slice(const L2Ranges& r, uint32_t block, uint32_t n_blocks, int lane,
                                                  int n_lanes) {
  uint64_t total = 0;
  for (int i = 0; i < r.n; ++i) total += r.bytes[i];
  if (total == 0) return;
  const uint64_t slice = ((total + n_blocks - 1) / n_blocks + 15) / 16 * 16;
  const uint64_t s0 = uint64_t(block) * slice, s1 = s0 + slice < total ? s0 + slice : total;
  uint64_t base = 0;
  for (int i = 0; i < r.n && base < s1; ++i) {
    const uint64_t end = base + r.bytes[i];
    const uint64_t a = s0 > base ? s0 : base, b = s1 < end ? s1 : end;
    for (uint64_t o = a + uint64_t(lane) * kL2PrefetchPiece; o < b; o += uint64_t(n_lanes) * kL2PrefetchPiece) {
      const uint64_t n = b - o < kL2PrefetchPiece ? b - o : kL2PrefetchPiece;
      bulk_prefetch_l2(static_cast<const uint8_t*>(r.p[i]) + (o - base), uint32_t(n));
    }
    base = end;
  }
}

}  // namespace imp::cuda
