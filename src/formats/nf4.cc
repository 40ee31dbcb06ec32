#include "formats/nf4.h"

#include <cmath>
#include <cstring>

#include "common/bits.h"
#include "common/error.h"

namespace imp {
namespace {

// The thresholds of bitsandbytes' dQuantizeNF4 decision tree (kernels.cu), written as it
// writes them: midpoints of consecutive NF4 values, as decimal fp32 literals.
constexpr float kNf4Midpoints[15] = {
    -0.8480964004993439f,  -0.6106329262256622f,  -0.4599952697753906f, -0.33967943489551544f,
    -0.23460740596055984f, -0.13791173323988914f, -0.045525018125772476f, 0.03979014977812767f,
    0.1202552504837513f,   0.2035212516784668f,   0.2920137718319893f,  0.3893125355243683f,
    0.5016634166240692f,   0.6427869200706482f,   0.8614784181118011f};

}  // namespace

uint8_t nf4_code(float v) {
  uint8_t c = 0;
  for (float m : kNf4Midpoints) c = uint8_t(c + (v > m ? 1 : 0));
  return c;
}

void quantize_row_nf4(const float* src, const RowPlanes& dst, int64_t n) {
  auto* codes = static_cast<uint8_t*>(dst.data);
  auto* scales = static_cast<uint8_t*>(dst.scales);
  for (int64_t b = 0; b < n / kNf4Block; ++b) {
    const float* x = src + b * kNf4Block;
    float amax = 0.0f;
    for (int j = 0; j < kNf4Block; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    std::memcpy(scales + b * sizeof(float), &amax, sizeof amax);
    const float inv = 1.0f / amax;
    for (int j = 0; j < kNf4Block; j += 2) {
      const uint8_t hi = amax > 0.0f ? nf4_code(x[j] * inv) : 7;
      const uint8_t lo = amax > 0.0f ? nf4_code(x[j + 1] * inv) : 7;
      codes[(b * kNf4Block + j) / 2] = uint8_t(hi << 4 | lo);
    }
  }
}

void dequantize_row_nf4(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* codes = static_cast<const uint8_t*>(src.data);
  const auto* scales = static_cast<const uint8_t*>(src.scales);
  for (int64_t b = 0; b < n / kNf4Block; ++b) {
    const float absmax = load_f32(scales + b * sizeof(float));
    for (int j = 0; j < kNf4Block; j += 2) {
      const uint8_t byte = codes[(b * kNf4Block + j) / 2];
      dst[b * kNf4Block + j] = kNf4Values[byte >> 4] * absmax;
      dst[b * kNf4Block + j + 1] = kNf4Values[byte & 0xF] * absmax;
    }
  }
}

float vec_dot_nf4(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* codes = static_cast<const uint8_t*>(w.data);
  const auto* scales = static_cast<const uint8_t*>(w.scales);
  const auto* a = static_cast<const float*>(act);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kNf4Block; ++b) {
    float partial = 0.0f;
    for (int j = 0; j < kNf4Block; j += 2) {
      const int64_t e = b * kNf4Block + j;
      const uint8_t byte = codes[e / 2];
      partial += kNf4Values[byte >> 4] * a[e];
      partial += kNf4Values[byte & 0xF] * a[e + 1];
    }
    sum += partial * load_f32(scales + b * sizeof(float));
  }
  return sum;
}

void nf4_decode_double_quant_absmax(std::span<const uint8_t> qabsmax, std::span<const float> nested_absmax,
                                    std::span<const float> nested_quant_map, float offset, std::span<float> out,
                                    int64_t nested_block) {
  if (nested_block <= 0) fail("nf4 double quant: nested block size must be positive, got {}", nested_block);
  if (nested_quant_map.size() != 256) {
    fail("nf4 double quant: nested_quant_map holds {} entries, an 8-bit code map needs 256", nested_quant_map.size());
  }
  const int64_t blocks = int64_t(qabsmax.size());
  const int64_t groups = (blocks + nested_block - 1) / nested_block;
  if (int64_t(nested_absmax.size()) != groups) {
    fail("nf4 double quant: nested_absmax holds {} entries, {} absmax codes in blocks of {} need {}",
         nested_absmax.size(), blocks, nested_block, groups);
  }
  if (out.size() != qabsmax.size()) {
    fail("nf4 double quant: output holds {} floats, there are {} absmax codes", out.size(), qabsmax.size());
  }
  for (int64_t b = 0; b < blocks; ++b) {
    const float scaled = nested_quant_map[qabsmax[size_t(b)]] * nested_absmax[size_t(b / nested_block)];
    out[size_t(b)] = scaled + offset;
  }
}

}  // namespace imp
