// Device codecs of the KV row types (layouts in formats/kv_type.h), bit-identical to the
// CPU reference encoders/decoders for finite inputs:
//   f32, f16 (RNE, same bit recipe as formats/f16.h), bf16 (RNE, formats/bf16.h),
//   fp8_e4m3 (F32 s = amax/448, code = E4M3 RNE of x/s saturated to ±448),
//   int8 (F32 s = amax/127, q = clamp(roundf(x/s), ±127)),
//   int4 (per 32-group f16 d = f16(amax/7), q = clamp(roundf(x/d), ±7) + 8, nibbles low first).
//   nvfp4 (F32 G = amax_row/(6·448), per 16-block E4M3 s = amax_b/(6·G) clamped to ≥ 2^-9,
//   codes E2M1 RNE of x/(e4m3(s)·G); formats/nvfp4_ckpt.cc quantize_row_nvfp4_ckpt).
// Encoding is done by one warp per row: the row is staged in shared memory, amax is a warp
// max (exact, order-free), then lanes encode elements. Division is IEEE (no fast math).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace imp::cuda::kvc {

enum : int32_t { kF32 = 0, kF16 = 1, kBF16 = 2, kFP8 = 3, kINT8 = 4, kINT4 = 5, kNVFP4 = 6 };
constexpr int kInt4Group = 32;

__device__ inline float load_f32(const uint8_t* p) {
  uint32_t u = uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
  return __uint_as_float(u);
}
__device__ inline void store_f32(uint8_t* p, float f) {
  const uint32_t u = __float_as_uint(f);
  p[0] = uint8_t(u);
  p[1] = uint8_t(u >> 8);
  p[2] = uint8_t(u >> 16);
  p[3] = uint8_t(u >> 24);
}
__device__ inline uint16_t load_u16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
__device__ inline void store_u16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v);
  p[1] = uint8_t(v >> 8);
}

__device__ inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16, e = (h >> 10) & 0x1F, m = h & 0x3FF;
  if (e == 0) {
    const float v = float(m) * 5.9604644775390625e-8f;  // m · 2^-24, exact
    return sign ? -v : v;
  }
  if (e == 31) return __uint_as_float(sign | 0x7F800000u | (m << 13));
  return __uint_as_float(sign | ((e + 112) << 23) | (m << 13));
}

// formats/f16.h f32_to_f16, step for step.
__device__ inline uint16_t f32_to_f16(float f) {
  const uint32_t x = __float_as_uint(f);
  const uint16_t sign = uint16_t((x >> 16) & 0x8000);
  uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) return sign | 0x7E00;
  if (ax >= 0x477FF000u) return sign | 0x7C00;
  if (ax < 0x38800000u) {
    const float r = __fadd_rn(__uint_as_float(ax), 0.5f);
    return sign | uint16_t(__float_as_uint(r) - 0x3F000000u);
  }
  ax += 0xC8000FFFu + ((ax >> 13) & 1);
  return sign | uint16_t(ax >> 13);
}

__device__ inline float bf16_to_f32(uint16_t h) { return __uint_as_float(uint32_t(h) << 16); }
__device__ inline uint16_t f32_to_bf16(float f) {
  const uint32_t u = __float_as_uint(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((u >> 16) | 0x0040);
  return uint16_t((u + 0x7FFFu + ((u >> 16) & 1)) >> 16);
}

__device__ inline float e4m3_to_f32(uint8_t b) {
  const uint32_t e = (b >> 3) & 0xF, m = b & 7;
  float v;
  if (e == 15 && m == 7) {
    v = __uint_as_float(0x7FC00000u);
  } else if (e == 0) {
    v = float(m) * 0.001953125f;  // 2^-9
  } else {
    v = ldexpf(float(8 + m), int(e) - 10);
  }
  return (b & 0x80) ? -v : v;
}
// formats/fp8_e4m3.h f32_to_e4m3_saturate, step for step.
__device__ inline uint8_t f32_to_e4m3_saturate(float f) {
  if (!(f == f)) return uint8_t(((__float_as_uint(f) >> 24) & 0x80) | 0x7F);
  f = fminf(fmaxf(f, -448.0f), 448.0f);
  const uint32_t x = __float_as_uint(f);
  const uint8_t sign = uint8_t((x >> 24) & 0x80);
  uint32_t ax = x & 0x7FFFFFFFu;
  const float a = __uint_as_float(ax);
  if (a < 0.015625f) {  // 2^-6: subnormal, RNE in units of 2^-9 through the FPU
    const float r = __fadd_rn(a, 16384.0f);
    return sign | uint8_t(__float_as_uint(r) - __float_as_uint(16384.0f));
  }
  ax += 0x7FFFFu + ((ax >> 20) & 1);
  const uint32_t e = (ax >> 23) - 127 + 7;
  return sign | uint8_t((e << 3) | ((ax >> 20) & 7));
}

// E2M1 code of v, round to nearest even (formats/e2m1.h f32_to_e2m1_rne, same thresholds;
// the sign bit is kept for values that round to zero, as there).
__device__ inline uint8_t f32_to_e2m1_rne(float v) {
  const float a = fabsf(v);
  uint8_t c;
  if (!(a > 0.25f)) c = 0;
  else if (a < 0.75f) c = 1;
  else if (a <= 1.25f) c = 2;
  else if (a < 1.75f) c = 3;
  else if (a <= 2.5f) c = 4;
  else if (a < 3.5f) c = 5;
  else if (a <= 5.0f) c = 6;
  else c = 7;
  return uint8_t(c | (v < 0.0f ? 8 : 0));
}
__device__ inline float e2m1_to_f32(uint32_t code) {
  const float mag[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  return (code & 8) ? -mag[code & 7] : mag[code & 7];
}
constexpr int kNvfp4Block = 16;

__device__ inline int int4_groups(int hd) { return (hd + kInt4Group - 1) / kInt4Group; }

// Element e of a row; `scale` is the row's F32 scale for fp8/int8 (ignored otherwise).
__device__ inline float row_scale(int32_t dtype, const uint8_t* row) {
  return (dtype == kFP8 || dtype == kINT8) ? load_f32(row) : 1.0f;
}
__device__ inline float decode_elem(int32_t dtype, const uint8_t* row, int e, int hd, float scale) {
  switch (dtype) {
    case kF32: return load_f32(row + 4 * e);
    case kF16: return f16_to_f32(load_u16(row + 2 * e));
    case kBF16: return bf16_to_f32(load_u16(row + 2 * e));
    case kFP8: return __fmul_rn(e4m3_to_f32(row[4 + e]), scale);
    case kINT8: return __fmul_rn(float(int8_t(row[4 + e])), scale);
    case kINT4: {
      const int ng = int4_groups(hd);
      float d = f16_to_f32(load_u16(row + 2 * (e / kInt4Group)));
      if (!(d > 0.0f)) d = 1.0f;
      const int q = int((row[2 * ng + e / 2] >> (4 * (e & 1))) & 0xF) - 8;
      return __fmul_rn(float(q), d);
    }
    case kNVFP4: {
      const float d = __fmul_rn(e4m3_to_f32(row[4 + e / kNvfp4Block]), load_f32(row));
      const uint32_t code = (row[4 + hd / kNvfp4Block + e / 2] >> (4 * (e & 1))) & 0xF;
      return __fmul_rn(e2m1_to_f32(code), d);
    }
    default: return 0.0f;
  }
}

// Element e of a row of an unscaled type (f32, f16, bf16: no row scale, so one element can
// be written alone); other types are not touched.
__device__ inline void store_plain_elem(int32_t dtype, uint8_t* row, int e, float v) {
  switch (dtype) {
    case kF32: store_f32(row + 4 * e, v); return;
    case kF16: store_u16(row + 2 * e, f32_to_f16(v)); return;
    case kBF16: store_u16(row + 2 * e, f32_to_bf16(v)); return;
    default: return;
  }
}

// Encodes src (hd floats, shared or global) into row with the whole warp (lane = threadIdx.x & 31).
__device__ inline void encode_row_warp(int32_t dtype, const float* src, uint8_t* row, int hd) {
  const int lane = threadIdx.x & 31;
  switch (dtype) {
    case kF32:
    case kF16:
    case kBF16:
      for (int e = lane; e < hd; e += 32) store_plain_elem(dtype, row, e, src[e]);
      return;
    case kFP8:
    case kINT8: {
      float amax = 0.0f;
      for (int e = lane; e < hd; e += 32) amax = fmaxf(amax, fabsf(src[e]));
      for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, o));
      const float qmax = dtype == kFP8 ? 448.0f : 127.0f;
      const float s = amax > 0.0f ? __fdiv_rn(amax, qmax) : 1.0f;
      if (lane == 0) store_f32(row, s);
      for (int e = lane; e < hd; e += 32) {
        const float v = __fdiv_rn(src[e], s);
        if (dtype == kFP8) {
          row[4 + e] = f32_to_e4m3_saturate(v);
        } else {
          row[4 + e] = uint8_t(int8_t(fminf(fmaxf(roundf(v), -127.0f), 127.0f)));
        }
      }
      return;
    }
    case kINT4: {
      // One lane per group: groups are at most 32 elements and head_dim ≤ 256 (≤ 8 groups).
      const int ng = int4_groups(hd);
      uint8_t* codes = row + 2 * ng;
      if (lane < ng) {
        const int e0 = lane * kInt4Group, e1 = min(e0 + kInt4Group, hd);
        float amax = 0.0f;
        for (int e = e0; e < e1; ++e) amax = fmaxf(amax, fabsf(src[e]));
        const uint16_t dh = f32_to_f16(amax > 0.0f ? __fdiv_rn(amax, 7.0f) : 1.0f);
        store_u16(row + 2 * lane, dh);
        float d = f16_to_f32(dh);
        if (!(d > 0.0f)) d = 1.0f;
        for (int e = e0; e < e1; e += 2) {  // groups start at even elements; hd is even
          const int q0 = int(fminf(fmaxf(roundf(__fdiv_rn(src[e], d)), -7.0f), 7.0f));
          const int q1 = int(fminf(fmaxf(roundf(__fdiv_rn(src[e + 1], d)), -7.0f), 7.0f));
          codes[e / 2] = uint8_t((q0 + 8) | ((q1 + 8) << 4));
        }
      }
      return;
    }
    case kNVFP4: {
      float amax = 0.0f;
      for (int e = lane; e < hd; e += 32) amax = fmaxf(amax, fabsf(src[e]));
      for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, o));
      float g = __fdiv_rn(amax, 6.0f * 448.0f);
      if (!(g > 0.0f)) g = 1.0f;
      if (lane == 0) store_f32(row, g);
      // One lane per 16-element block (head_dim ≤ 256: at most 16 blocks).
      const int nb = hd / kNvfp4Block;
      uint8_t* codes = row + 4 + nb;
      if (lane < nb) {
        const float* x = src + lane * kNvfp4Block;
        float bmax = 0.0f;
        for (int j = 0; j < kNvfp4Block; ++j) bmax = fmaxf(bmax, fabsf(x[j]));
        float s = __fdiv_rn(bmax, __fmul_rn(6.0f, g));
        if (s == 0.0f) s = 1.0f;
        if (s < 0x1p-9f) s = 0x1p-9f;
        const uint8_t sb = f32_to_e4m3_saturate(s);  // s ≤ 448 up to rounding: saturation never changes it
        row[4 + lane] = sb;
        const float d = __fmul_rn(e4m3_to_f32(sb), g);
        for (int j = 0; j < kNvfp4Block; j += 2) {
          codes[(lane * kNvfp4Block + j) / 2] =
              uint8_t(f32_to_e2m1_rne(__fdiv_rn(x[j], d)) | (f32_to_e2m1_rne(__fdiv_rn(x[j + 1], d)) << 4));
        }
      }
      return;
    }
    default: return;
  }
}

__device__ inline uint8_t* kv_row_ptr(uint8_t* pool, const int32_t* table, int block_tokens, int n_kv_head,
                                      int row_bytes, int pos, int g) {
  const int64_t block = table[pos / block_tokens];
  const int64_t slot = block * block_tokens + pos % block_tokens;
  return pool + (slot * n_kv_head + g) * int64_t(row_bytes);
}

}  // namespace imp::cuda::kvc
