#include "formats/mxfp4_ckpt.h"

#include <cmath>
#include <cstring>

#include "common/bits.h"
#include "formats/e2m1.h"
#include "formats/e8m0.h"
#include "formats/f16.h"
#include "formats/q8_0.h"

namespace imp {

uint8_t mxfp4_ckpt_shared_exponent(float amax) {
  // floor(log2(amax)) is the unbiased fp32 exponent for normal amax; subnormal amax has
  // floor(log2) ≤ −127, so after − 2 it clamps to −127 like zero does.
  // The largest finite amax gives 127 − 2, so only the lower clamp can bite; an infinite
  // block gets the NaN scale, as OCP MX prescribes for Inf/NaN inputs.
  const int biased = int((f32_bits(amax) >> 23) & 0xFF);
  if (biased == 0xFF) return 0xFF;
  const int e = biased - 127 - 2;
  return uint8_t(e < -127 ? 0 : e + 127);
}

void quantize_row_mxfp4_ckpt(const float* src, const RowPlanes& dst, int64_t n) {
  auto* codes = static_cast<uint8_t*>(dst.data);
  auto* scales = static_cast<uint8_t*>(dst.scales);
  for (int64_t b = 0; b < n / kMxfp4CkptBlock; ++b) {
    const float* x = src + b * kMxfp4CkptBlock;
    float amax = 0.0f;
    for (int j = 0; j < kMxfp4CkptBlock; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const uint8_t e = mxfp4_ckpt_shared_exponent(amax);
    scales[b] = e;
    // 2^(e−127) is exact in fp32 (2^-127 as a subnormal), so x / scale is exact unless it
    // underflows, and anything that small rounds to code 0 either way.
    const float scale = e8m0_to_f32(e);
    for (int j = 0; j < kMxfp4CkptBlock; j += 2) {
      const uint8_t lo = f32_to_e2m1_rne(x[j] / scale);
      const uint8_t hi = f32_to_e2m1_rne(x[j + 1] / scale);
      codes[(b * kMxfp4CkptBlock + j) / 2] = uint8_t(lo | hi << 4);
    }
  }
}

void dequantize_row_mxfp4_ckpt(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* codes = static_cast<const uint8_t*>(src.data);
  const auto* scales = static_cast<const uint8_t*>(src.scales);
  for (int64_t e = 0; e < n; ++e) {
    dst[e] = e2m1_to_f32(uint8_t(codes[e / 2] >> (4 * (e & 1)))) * e8m0_to_f32(scales[e / kMxfp4CkptBlock]);
  }
}

float vec_dot_mxfp4_ckpt(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* codes = static_cast<const uint8_t*>(w.data);
  const auto* scales = static_cast<const uint8_t*>(w.scales);
  const auto* ap = static_cast<const uint8_t*>(act);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kMxfp4CkptBlock; ++b) {
    BlockQ8_0 y;
    std::memcpy(&y, ap + b * sizeof y, sizeof y);
    const uint8_t* q = codes + b * (kMxfp4CkptBlock / 2);
    int sumi = 0;
    for (int j = 0; j < kMxfp4CkptBlock / 2; ++j) {
      sumi += int(kE2M1TimesTwo[q[j] & 0xF]) * int(y.qs[2 * j]);
      sumi += int(kE2M1TimesTwo[q[j] >> 4]) * int(y.qs[2 * j + 1]);
    }
    // Halved because the table is 2·E2M1; 0.5 · 2^(E−127) is exact (2^-128 is a subnormal).
    sum += float(sumi) * (0.5f * e8m0_to_f32(scales[b])) * f16_to_f32(y.d);
  }
  return sum;
}

}  // namespace imp
