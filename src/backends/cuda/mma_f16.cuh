// f16 tensor-core helpers shared by the kernels that use mma.sync.m16n8k16 with f16 inputs
// and f32 accumulation (the decode GEMV gemv_mma.cu, the prefill attention
// attention_prefill.cu). Fragment layouts (PTX ISA, "mma.m16n8k16", g = lane / 4,
// c = lane % 4): A (16×16, row-major) a0 = (g, 2c..2c+1), a1 = (g+8, 2c..), a2 = (g, 2c+8..),
// a3 = (g+8, 2c+8..); B (16×8, column-major) b0 = (k 2c..2c+1, n g), b1 = (k 2c+8.., n g);
// C/D (16×8 f32) d0,d1 = (g, 2c..2c+1), d2,d3 = (g+8, 2c..2c+1).
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

namespace imp::cuda::mma {

__device__ __forceinline__ uint32_t h2_bits(__half2 h) { return *reinterpret_cast<uint32_t*>(&h); }
__device__ __forceinline__ __half2 bits_h2(uint32_t u) { return *reinterpret_cast<__half2*>(&u); }
__device__ __forceinline__ float2 h2_to_f2(uint32_t h) { return __half22float2(bits_h2(h)); }

// f16 pair (lo, hi), round to nearest even, saturating to ±65504.
__device__ __forceinline__ uint32_t f16x2_sat(float lo, float hi) {
  uint32_t r;
  asm("cvt.rn.satfinite.f16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

// D = A·B + D for one m16n8k16 tile (A row-major 16×16 f16, B column-major 16×8 f16).
__device__ __forceinline__ void mma_16816(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                          uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Four 8×8 b16 matrices from shared memory (ldmatrix.x4): lanes 8i … 8i+7 give the 16-byte
// row addresses of matrix i; r[i] is this lane's pair of it — (row lane/4, cols 2(lane%4),
// +1), or with .trans (row 2(lane%4), +1; col lane/4), i.e. a B fragment of a row-major
// [k][n] tile.
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(static_cast<uint32_t>(__cvta_generic_to_shared(row))));
}
__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(static_cast<uint32_t>(__cvta_generic_to_shared(row))));
}

}  // namespace imp::cuda::mma
