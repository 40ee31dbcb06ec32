#include "formats/kv_type.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/bits.h"
#include "common/error.h"
#include "formats/bf16.h"
#include "formats/f16.h"
#include "formats/f32.h"
#include "formats/fp8_e4m3.h"
#include "formats/nvfp4_ckpt.h"

namespace imp {

namespace {

float row_amax(const float* x, int64_t n) {
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) amax = std::fmax(amax, std::fabs(x[i]));
  return amax;
}

int64_t int4_groups(int64_t hd) { return (hd + kKvInt4Group - 1) / kKvInt4Group; }

void encode_f32(const float* s, uint8_t* d, int64_t n) { quantize_row_f32(s, {d}, n); }
void decode_f32(const uint8_t* s, float* d, int64_t n) { dequantize_row_f32({s}, d, n); }
void encode_f16(const float* s, uint8_t* d, int64_t n) { quantize_row_f16(s, {d}, n); }
void decode_f16(const uint8_t* s, float* d, int64_t n) { dequantize_row_f16({s}, d, n); }
void encode_bf16(const float* s, uint8_t* d, int64_t n) { quantize_row_bf16(s, {d}, n); }
void decode_bf16(const uint8_t* s, float* d, int64_t n) { dequantize_row_bf16({s}, d, n); }

void encode_fp8(const float* src, uint8_t* dst, int64_t n) {
  const float amax = row_amax(src, n);
  const float s = amax > 0.0f ? amax / 448.0f : 1.0f;
  store_f32(dst, s);
  for (int64_t i = 0; i < n; ++i) dst[4 + i] = f32_to_e4m3_saturate(src[i] / s);
}
void decode_fp8(const uint8_t* src, float* dst, int64_t n) {
  const float s = load_f32(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = e4m3_to_f32(src[4 + i]) * s;
}

void encode_int8(const float* src, uint8_t* dst, int64_t n) {
  const float amax = row_amax(src, n);
  const float s = amax > 0.0f ? amax / 127.0f : 1.0f;
  store_f32(dst, s);
  for (int64_t i = 0; i < n; ++i) {
    const float q = std::fmin(std::fmax(std::round(src[i] / s), -127.0f), 127.0f);
    dst[4 + i] = uint8_t(int8_t(q));
  }
}
void decode_int8(const uint8_t* src, float* dst, int64_t n) {
  const float s = load_f32(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = float(int8_t(src[4 + i])) * s;
}

void encode_int4(const float* src, uint8_t* dst, int64_t n) {
  const int64_t ng = int4_groups(n);
  uint8_t* codes = dst + 2 * ng;
  std::memset(codes, 0, size_t(n / 2));
  for (int64_t g = 0; g < ng; ++g) {
    const int64_t e0 = g * kKvInt4Group, len = std::min<int64_t>(kKvInt4Group, n - e0);
    const float amax = row_amax(src + e0, len);
    const uint16_t dh = f32_to_f16(amax > 0.0f ? amax / 7.0f : 1.0f);
    store_u16(dst + 2 * g, dh);
    // Quantize with the scale as stored so encode and decode agree on d.
    float d = f16_to_f32(dh);
    if (!(d > 0.0f)) d = 1.0f;  // amax/7 below the F16 subnormal range rounds to 0
    for (int64_t e = e0; e < e0 + len; ++e) {
      const int q = int(std::fmin(std::fmax(std::round(src[e] / d), -7.0f), 7.0f));
      codes[e / 2] = uint8_t(codes[e / 2] | (uint8_t(q + 8) << (4 * (e & 1))));
    }
  }
}
void decode_int4(const uint8_t* src, float* dst, int64_t n) {
  const int64_t ng = int4_groups(n);
  const uint8_t* codes = src + 2 * ng;
  for (int64_t g = 0; g < ng; ++g) {
    float d = f16_to_f32(load_u16(src + 2 * g));
    if (!(d > 0.0f)) d = 1.0f;
    const int64_t e0 = g * kKvInt4Group, e1 = std::min<int64_t>(e0 + kKvInt4Group, n);
    for (int64_t e = e0; e < e1; ++e) dst[e] = float(int((codes[e / 2] >> (4 * (e & 1))) & 0xF) - 8) * d;
  }
}

void encode_nvfp4(const float* src, uint8_t* dst, int64_t n) {
  const float g = nvfp4_ckpt_tensor_scale(row_amax(src, n));
  store_f32(dst, g);
  RowPlanes p;
  p.scales = dst + 4;
  p.data = dst + 4 + n / kNvfp4CkptBlock;
  p.tensor_scale = g;
  quantize_row_nvfp4_ckpt(src, p, n);
}
void decode_nvfp4(const uint8_t* src, float* dst, int64_t n) {
  ConstRowPlanes p;
  p.scales = src + 4;
  p.data = src + 4 + n / kNvfp4CkptBlock;
  p.tensor_scale = load_f32(src);
  dequantize_row_nvfp4_ckpt(p, dst, n);
}

}  // namespace

std::string_view kv_type_name(KvType t) {
  switch (t) {
    case KvType::F32: return "f32";
    case KvType::F16: return "f16";
    case KvType::BF16: return "bf16";
    case KvType::FP8_E4M3: return "fp8_e4m3";
    case KvType::INT8: return "int8";
    case KvType::INT4: return "int4";
    case KvType::NVFP4: return "nvfp4";
  }
  return "?";
}

KvType parse_kv_type(std::string_view name) {
  for (KvType t : kAllKvTypes) {
    if (name == kv_type_name(t)) return t;
  }
  if (name == "fp8") return KvType::FP8_E4M3;
  fail("KV type '{}' is not one of f32, f16, bf16, fp8_e4m3, int8, int4, nvfp4", name);
}

std::optional<FormatId> kv_type_scalar_format(KvType t) {
  switch (t) {
    case KvType::F32: return FormatId::F32;
    case KvType::F16: return FormatId::F16;
    case KvType::BF16: return FormatId::BF16;
    default: return std::nullopt;
  }
}

bool kv_type_fits_head_dim(KvType t, int64_t hd) {
  if (hd <= 0) return false;
  if (t == KvType::INT4) return hd % 2 == 0;
  if (t == KvType::NVFP4) return hd % kNvfp4CkptBlock == 0;
  return true;
}

int64_t kv_row_bytes(KvType t, int64_t hd) {
  if (!kv_type_fits_head_dim(t, hd)) {
    fail("KV type {} cannot hold rows of head_dim {} (int4 needs an even head_dim, nvfp4 a multiple of 16)",
         kv_type_name(t), hd);
  }
  switch (t) {
    case KvType::F32: return 4 * hd;
    case KvType::F16:
    case KvType::BF16: return 2 * hd;
    case KvType::FP8_E4M3:
    case KvType::INT8: return 4 + hd;
    case KvType::INT4: return 2 * int4_groups(hd) + hd / 2;
    case KvType::NVFP4: return 4 + hd / kNvfp4CkptBlock + hd / 2;
  }
  fail("KV type {} has no row size", int(t));
}

KvEncodeRowFn kv_encode_row_fn(KvType t) {
  switch (t) {
    case KvType::F32: return encode_f32;
    case KvType::F16: return encode_f16;
    case KvType::BF16: return encode_bf16;
    case KvType::FP8_E4M3: return encode_fp8;
    case KvType::INT8: return encode_int8;
    case KvType::INT4: return encode_int4;
    case KvType::NVFP4: return encode_nvfp4;
  }
  fail("KV type {} has no encoder", int(t));
}

KvDecodeRowFn kv_decode_row_fn(KvType t) {
  switch (t) {
    case KvType::F32: return decode_f32;
    case KvType::F16: return decode_f16;
    case KvType::BF16: return decode_bf16;
    case KvType::FP8_E4M3: return decode_fp8;
    case KvType::INT8: return decode_int8;
    case KvType::INT4: return decode_int4;
    case KvType::NVFP4: return decode_nvfp4;
  }
  fail("KV type {} has no decoder", int(t));
}

}  // namespace imp
