#include "quant/nvfp4_search.h"

#include <cmath>
#include <cstring>

#include "common/error.h"
#include "formats/e2m1.h"
#include "formats/fp8_e4m3.h"
#include "formats/mxfp4.h"
#include "formats/nvfp4.h"
#include "formats/nvfp4_ckpt.h"
#include "formats/ue4m3.h"

namespace imp::quant {

namespace {

constexpr int kB = 16;

// Positive, finite UE4M3 codes are 0x01 … 0x7E and increase with the value.
bool valid_code(int c) { return c >= 1 && c <= 0x7E; }

// Checkpoint block: codes for scale byte sb (decoded d = E4M3(sb)·G), weighted error.
double ckpt_block(const float* x, const float* w, uint8_t sb, float g, uint8_t* codes) {
  const float d = e4m3_to_f32(sb) * g;
  double err = 0;
  for (int j = 0; j < kB; ++j) {
    codes[j] = f32_to_e2m1_rne(x[j] / d);
    const double e = double(x[j]) - double(e2m1_to_f32(codes[j]) * d);
    err += double(w[j]) * e * e;
  }
  return err;
}

double ggml_block(const float* x, const float* w, uint8_t sb, uint8_t* codes) {
  const float d = ue4m3_to_f32_half_ggml(sb);
  double err = 0;
  for (int j = 0; j < kB; ++j) {
    codes[j] = uint8_t(e2m1_best_index_ggml(x[j], d));
    const double e = double(x[j]) - double(float(kE2M1TimesTwo[codes[j]]) * d);
    err += double(w[j]) * e * e;
  }
  return err;
}

float block_amax(const float* x) {
  float a = 0;
  for (int j = 0; j < kB; ++j) a = std::fmax(a, std::fabs(x[j]));
  return a;
}

// Searches one block; rtn is the RTN scale byte. Returns the chosen byte, codes in `best`.
template <class Eval>
uint8_t search(uint8_t rtn, int radius, Eval eval, uint8_t* best) {
  uint8_t codes[kB];
  double best_err = eval(rtn, best);
  uint8_t best_sb = rtn;
  if (!valid_code(rtn)) return rtn;
  for (int k = -radius; k <= radius; ++k) {
    const int c = int(rtn) + k;
    if (k == 0 || !valid_code(c)) continue;
    const double e = eval(uint8_t(c), codes);
    if (e < best_err) {
      best_err = e;
      best_sb = uint8_t(c);
      std::memcpy(best, codes, kB);
    }
  }
  return best_sb;
}

void check(std::span<const float> x, int64_t rows, int64_t cols, std::span<const float> imp_) {
  if (int64_t(x.size()) != rows * cols) fail("nvfp4 search: {} values for {} × {}", x.size(), rows, cols);
  if (int64_t(imp_.size()) != cols) fail("nvfp4 search: importance has {} entries for {} columns", imp_.size(), cols);
}

}  // namespace

OwnedQuantMatrix quantize_nvfp4_ckpt_weighted(std::span<const float> x, int64_t rows, int64_t cols, float g,
                                              std::span<const float> importance, int radius) {
  check(x, rows, cols, importance);
  check_row_length(FormatId::NVFP4_CKPT, cols);
  OwnedQuantMatrix m;
  m.format = FormatId::NVFP4_CKPT;
  m.rows = rows;
  m.cols = cols;
  m.tensor_scale = g;
  m.data.assign(size_t(rows * cols / 2), 0);
  m.scales.assign(size_t(rows * cols / kB), 0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < cols / kB; ++b) {
      const float* xb = x.data() + r * cols + b * kB;
      const float* wb = importance.data() + b * kB;
      // RTN's scale byte, exactly as quantize_row_nvfp4_ckpt computes it.
      float s = block_amax(xb) / (6.0f * g);
      if (s == 0.0f) s = 1.0f;
      if (s < 0x1p-9f) s = 0x1p-9f;
      uint8_t codes[kB];
      const uint8_t sb = search(f32_to_e4m3(s), radius,
                                [&](uint8_t c, uint8_t* out) { return ckpt_block(xb, wb, c, g, out); }, codes);
      m.scales[size_t(r * cols / kB + b)] = sb;
      uint8_t* dst = m.data.data() + (r * cols + b * kB) / 2;
      for (int j = 0; j < kB; j += 2) dst[j / 2] = uint8_t(codes[j] | codes[j + 1] << 4);
    }
  }
  return m;
}

OwnedQuantMatrix quantize_nvfp4_weighted(FormatId format, std::span<const float> x, int64_t rows, int64_t cols,
                                         std::span<const float> importance, int radius) {
  check(x, rows, cols, importance);
  if (format == FormatId::NVFP4_CKPT) {
    float amax = 0;
    for (float v : x) amax = std::fmax(amax, std::fabs(v));
    return quantize_nvfp4_ckpt_weighted(x, rows, cols, nvfp4_ckpt_tensor_scale(amax), importance, radius);
  }
  if (format != FormatId::NVFP4) fail("nvfp4 search: {} is not an NVFP4 format", format_name(format));
  check_row_length(format, cols);
  OwnedQuantMatrix m;
  m.format = format;
  m.rows = rows;
  m.cols = cols;
  m.data.assign(size_t(rows * row_data_bytes(format, cols)), 0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < cols / kQK_NVFP4; ++b) {
      BlockNVFP4 blk{};
      for (int s = 0; s < kQK_NVFP4 / kB; ++s) {
        const int64_t c0 = b * kQK_NVFP4 + s * kB;
        const float* xb = x.data() + r * cols + c0;
        const float* wb = importance.data() + c0;
        uint8_t codes[kB];
        const uint8_t sb = search(f32_to_ue4m3_ggml(block_amax(xb) / 6.0f), radius,
                                  [&](uint8_t c, uint8_t* out) { return ggml_block(xb, wb, c, out); }, codes);
        blk.d[s] = sb;
        for (int j = 0; j < kB / 2; ++j) blk.qs[s * kB / 2 + j] = uint8_t(codes[j] | (codes[j + kB / 2] << 4));
      }
      std::memcpy(m.data.data() + (r * cols / kQK_NVFP4 + b) * int64_t(sizeof blk), &blk, sizeof blk);
    }
  }
  return m;
}

}  // namespace imp::quant
