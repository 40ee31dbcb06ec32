// Host/device scalar decoders shared by every CUDA decode helper (decode_*.cuh).
//
// These reproduce the CPU references in src/formats/{f16,bf16,fp8_e4m3,e2m1}.h bit for bit,
// NaN payloads included, so a dequantization built from them can be compared bitwise.
// Products go through imp_fmul_rn / imp_fsub_rn: nvcc would otherwise be free to contract
// `a*b - c` into one FMA (one rounding instead of two), which the CPU reference — built
// with -ffp-contract=off — never does. On the host side (nvcc's host pass, used by tests
// and for constant folding) plain operators are exact because x86-64 without -mfma has
// no FMA to contract into.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#define IMP_HD __host__ __device__ __forceinline__

namespace imp::cuda {

IMP_HD float imp_fmul_rn(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

IMP_HD float imp_fsub_rn(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}

IMP_HD float imp_fadd_rn(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

IMP_HD float bits_to_f32(uint32_t u) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(u);
#else
  float f;
  __builtin_memcpy(&f, &u, sizeof f);
  return f;
#endif
}

IMP_HD uint32_t f32_to_bits(float f) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(f);
#else
  uint32_t u;
  __builtin_memcpy(&u, &f, sizeof u);
  return u;
#endif
}

// Unaligned little-endian loads from a byte pointer (GGUF blocks are 2-byte aligned at best).
IMP_HD uint16_t load_le16(const uint8_t* p) { return uint16_t(p[0] | (uint16_t(p[1]) << 8)); }
IMP_HD float load_le_f32(const uint8_t* p) {
  return bits_to_f32(uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24);
}

// IEEE binary16 → fp32, exact; Inf/NaN keep sign and payload (as formats/f16.h).
IMP_HD float f16_bits_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  const uint32_t e = (h >> 10) & 0x1F;
  const uint32_t m = h & 0x3FF;
  if (e == 0) {
    const float v = float(m) * 0x1p-24f;  // exact: m < 2^10
    return sign ? -v : v;
  }
  if (e == 31) return bits_to_f32(sign | 0x7F800000u | (m << 13));
  return bits_to_f32(sign | ((e + 112) << 23) | (m << 13));
}

IMP_HD float bf16_bits_to_f32(uint16_t h) { return bits_to_f32(uint32_t(h) << 16); }

// FP8 E4M3FN → fp32 (formats/fp8_e4m3.h): 0x7F/0xFF are the quiet NaN 0x7FC00000 with the
// code's sign; no Inf.
IMP_HD float e4m3_bits_to_f32(uint8_t b) {
  const uint32_t e = (b >> 3) & 0xF, m = b & 7;
  float v;
  if (e == 15 && m == 7) {
    v = bits_to_f32(0x7FC00000u);
  } else if (e == 0) {
    v = float(m) * 0x1p-9f;  // exact
  } else {
    v = bits_to_f32(((e + 120) << 23) | (m << 20));  // (8+m)·2^(e−10)
  }
  return (b & 0x80) ? -v : v;
}

// FP4 E2M1 → fp32 (formats/e2m1.h): magnitudes 0, .5, 1, 1.5, 2, 3, 4, 6; bit 3 = sign.
// Twice the magnitude is a 4-bit integer, packed here as nibbles of one constant.
IMP_HD float e2m1_bits_to_f32(uint8_t code) {
  const uint32_t twice = (0xC8643210u >> (4 * (code & 7))) & 0xF;
  const float v = float(twice) * 0.5f;  // exact
  return (code & 8) ? -v : v;
}

// 2·E2M1 as a signed integer (ggml's kvalues_mxfp4 / kE2M1TimesTwo): 0 1 2 3 4 6 8 12, bit 3 = sign.
IMP_HD int e2m1_times_two(uint32_t code) {
  const int twice = int((0xC8643210u >> (4 * (code & 7))) & 0xF);
  return (code & 8) ? -twice : twice;
}

// E8M0 → fp32 as the CPU references read it (formats/e8m0.h):
//   e8m0_value      : 2^(E−127), 0x00 → 2^-127 (subnormal), 0xFF → NaN (the OCP reading)
//   e8m0_half_ggml  : 2^(E−128), ggml's reading used with the doubled E2M1 table
IMP_HD float e8m0_value(uint8_t e) {
  // One expression (selects, not branches: the tensor-core MXFP4 GEMV converts 8 per unit).
  return bits_to_f32(e == 0xFF ? 0x7FC00000u : e == 0 ? 0x00400000u : uint32_t(e) << 23);
}
IMP_HD float e8m0_half_ggml(uint8_t e) {
  return e < 2 ? bits_to_f32(0x00200000u << e) : bits_to_f32(uint32_t(e - 1) << 23);
}

// UE4M3 → fp32 halved, ggml's NVFP4 sub-block scale (formats/ue4m3.h): 0x00 and 0x7F → 0,
// the sign bit ignored. Every step of the CPU expression is exact, so the value is
// (8+m)·2^(e−11) for e > 0 and m·2^-10 for e = 0.
IMP_HD float ue4m3_half_ggml(uint8_t b) {
  if (b == 0x00 || b == 0x7F) return 0.0f;
  const uint32_t e = (b >> 3) & 0xF, m = b & 7;
  if (e == 0) return float(m) * 0x1p-10f;
  return bits_to_f32(((e + 119) << 23) | (m << 20));  // (1 + m/8)·2^(e−7)·0.5
}

}  // namespace imp::cuda
