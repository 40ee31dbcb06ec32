#include "formats/fp8_scaled.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/bits.h"
#include "formats/fp8_e4m3.h"

namespace imp {
namespace {

// Elements [begin, end) of a row: codes of x / scale, their dequantization, their dot.
void encode(const float* x, uint8_t* codes, int64_t begin, int64_t end, float scale) {
  for (int64_t i = begin; i < end; ++i) codes[i] = f32_to_e4m3(x[i] / scale);
}

void decode(const uint8_t* codes, float* y, int64_t begin, int64_t end, float scale) {
  for (int64_t i = begin; i < end; ++i) y[i] = e4m3_to_f32(codes[i]) * scale;
}

float dot(const uint8_t* codes, const float* a, int64_t begin, int64_t end) {
  float sum = 0.0f;
  for (int64_t i = begin; i < end; ++i) sum += e4m3_to_f32(codes[i]) * a[i];
  return sum;
}

float row_amax(const float* x, int64_t n) {
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) amax = std::fmax(amax, std::fabs(x[i]));
  return amax;
}

}  // namespace

float fp8_e4m3_tensor_scale(float amax) {
  const float s = amax / 448.0f;
  return s > 0.0f ? s : 1.0f;
}

void quantize_row_fp8_e4m3_tensor(const float* src, const RowPlanes& dst, int64_t n) {
  encode(src, static_cast<uint8_t*>(dst.data), 0, n, dst.tensor_scale);
}

void dequantize_row_fp8_e4m3_tensor(const ConstRowPlanes& src, float* dst, int64_t n) {
  decode(static_cast<const uint8_t*>(src.data), dst, 0, n, src.tensor_scale);
}

float vec_dot_fp8_e4m3_tensor(const ConstRowPlanes& w, const void* act, int64_t n) {
  return dot(static_cast<const uint8_t*>(w.data), static_cast<const float*>(act), 0, n) * w.tensor_scale;
}

void quantize_row_fp8_e4m3_channel(const float* src, const RowPlanes& dst, int64_t n) {
  const float scale = fp8_e4m3_tensor_scale(row_amax(src, n));
  std::memcpy(dst.scales, &scale, sizeof scale);
  encode(src, static_cast<uint8_t*>(dst.data), 0, n, scale);
}

void dequantize_row_fp8_e4m3_channel(const ConstRowPlanes& src, float* dst, int64_t n) {
  decode(static_cast<const uint8_t*>(src.data), dst, 0, n, load_f32(src.scales));
}

float vec_dot_fp8_e4m3_channel(const ConstRowPlanes& w, const void* act, int64_t n) {
  return dot(static_cast<const uint8_t*>(w.data), static_cast<const float*>(act), 0, n) * load_f32(w.scales);
}

void quantize_row_fp8_e4m3_block128(const float* src, const RowPlanes& dst, int64_t n) {
  const auto* scales = static_cast<const uint8_t*>(dst.scales);
  for (int64_t t = 0; t * kFp8Tile < n; ++t) {
    const int64_t end = std::min<int64_t>(n, (t + 1) * kFp8Tile);
    encode(src, static_cast<uint8_t*>(dst.data), t * kFp8Tile, end, load_f32(scales + t * sizeof(float)));
  }
}

void dequantize_row_fp8_e4m3_block128(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* scales = static_cast<const uint8_t*>(src.scales);
  for (int64_t t = 0; t * kFp8Tile < n; ++t) {
    const int64_t end = std::min<int64_t>(n, (t + 1) * kFp8Tile);
    decode(static_cast<const uint8_t*>(src.data), dst, t * kFp8Tile, end, load_f32(scales + t * sizeof(float)));
  }
}

float vec_dot_fp8_e4m3_block128(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* scales = static_cast<const uint8_t*>(w.scales);
  float sum = 0.0f;
  for (int64_t t = 0; t * kFp8Tile < n; ++t) {
    const int64_t end = std::min<int64_t>(n, (t + 1) * kFp8Tile);
    sum += dot(static_cast<const uint8_t*>(w.data), static_cast<const float*>(act), t * kFp8Tile, end) *
           load_f32(scales + t * sizeof(float));
  }
  return sum;
}

}  // namespace imp
