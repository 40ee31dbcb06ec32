#include "backends/cpu/act_emulation.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "formats/e2m1.h"
#include "formats/fp8_e4m3.h"
#include "formats/mxfp4_ckpt.h"
#include "formats/nvfp4_ckpt.h"

namespace imp {

ActEmulation parse_act_emulation(std::string_view s) {
  if (s == "none") return ActEmulation::kNone;
  if (s == "nvfp4") return ActEmulation::kNvfp4;
  if (s == "mxfp4") return ActEmulation::kMxfp4;
  if (s == "fp8") return ActEmulation::kFp8;
  fail("--act-emulate: '{}' is not none, nvfp4, mxfp4 or fp8", s);
}

std::string_view act_emulation_name(ActEmulation e) {
  switch (e) {
    case ActEmulation::kNone: return "none";
    case ActEmulation::kNvfp4: return "nvfp4";
    case ActEmulation::kMxfp4: return "mxfp4";
    case ActEmulation::kFp8: return "fp8";
  }
  return "?";
}

float act_emulation_dynamic_scale(ActEmulation e, float amax) {
  switch (e) {
    case ActEmulation::kNvfp4: return nvfp4_ckpt_tensor_scale(amax);
    case ActEmulation::kFp8: {
      const float s = amax / 448.0f;
      return s > 0.0f ? s : 1.0f;
    }
    default: return 1.0f;
  }
}

namespace {

int64_t block_of(ActEmulation e) {
  return e == ActEmulation::kNvfp4 ? kNvfp4CkptBlock : e == ActEmulation::kMxfp4 ? kMxfp4CkptBlock : 1;
}

void fake_quant_row_nvfp4(const float* x, int64_t n, float g, float* out) {
  const int64_t nb = n / kNvfp4CkptBlock;
  std::vector<uint8_t> codes(static_cast<size_t>(n / 2)), scales(static_cast<size_t>(nb));
  RowPlanes p;
  p.data = codes.data();
  p.scales = scales.data();
  p.tensor_scale = g;
  quantize_row_nvfp4_ckpt(x, p, n);
  for (int64_t b = 0; b < nb; ++b) {
    if ((scales[size_t(b)] & 0x7F) != 0x7F) continue;
    // The E4M3 cast overflowed (block amax > 464·6·G, or infinite): saturate the scale to 448 as the
    // hardware's satfinite conversion does and re-encode the block with it. A NaN in the
    // block stays NaN, as it does on the hardware.
    const float* xb = x + b * kNvfp4CkptBlock;
    bool has_nan = false;
    for (int j = 0; j < kNvfp4CkptBlock; ++j) has_nan |= std::isnan(xb[j]);
    if (has_nan) continue;
    scales[size_t(b)] = 0x7E;
    const float d = e4m3_to_f32(0x7E) * g;
    for (int j = 0; j < kNvfp4CkptBlock; j += 2) {
      const uint8_t lo = f32_to_e2m1_rne(xb[j] / d), hi = f32_to_e2m1_rne(xb[j + 1] / d);
      codes[size_t((b * kNvfp4CkptBlock + j) / 2)] = uint8_t(lo | hi << 4);
    }
  }
  dequantize_row_nvfp4_ckpt(p, out, n);
}

void fake_quant_row_mxfp4(const float* x, int64_t n, float* out) {
  std::vector<uint8_t> codes(static_cast<size_t>(n / 2)), scales(static_cast<size_t>(n / kMxfp4CkptBlock));
  RowPlanes p;
  p.data = codes.data();
  p.scales = scales.data();
  quantize_row_mxfp4_ckpt(x, p, n);
  dequantize_row_mxfp4_ckpt(p, out, n);
}

void fake_quant_row_fp8(const float* x, int64_t n, float s, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = e4m3_to_f32(f32_to_e4m3_saturate(x[i] / s)) * s;
}

}  // namespace

void fake_quant_row(ActEmulation e, const float* x, int64_t n, float global_scale, float* out) {
  const int64_t block = block_of(e);
  if (n <= 0 || n % block != 0) {
    fail("--act-emulate {}: an activation row of {} elements is not a positive multiple of the {}-element block",
         act_emulation_name(e), n, block);
  }
  switch (e) {
    case ActEmulation::kNone: std::copy_n(x, n, out); return;
    case ActEmulation::kNvfp4: return fake_quant_row_nvfp4(x, n, global_scale, out);
    case ActEmulation::kMxfp4: return fake_quant_row_mxfp4(x, n, out);
    case ActEmulation::kFp8: return fake_quant_row_fp8(x, n, global_scale, out);
  }
}

float fake_quantize_activations(ActEmulation e, const float* x, int64_t n_tok, int64_t cols,
                                std::optional<float> static_scale, float* out) {
  float scale = 1.0f;
  if (static_scale) {
    if (!(*static_scale > 0.0f) || !std::isfinite(*static_scale)) {
      fail("--act-emulate {}: input_scale {} is not a positive finite number", act_emulation_name(e), *static_scale);
    }
    scale = *static_scale;
  } else {
    float amax = 0.0f;
    for (int64_t i = 0; i < n_tok * cols; ++i) amax = std::fmax(amax, std::fabs(x[i]));
    scale = act_emulation_dynamic_scale(e, amax);
  }
  for (int64_t t = 0; t < n_tok; ++t) fake_quant_row(e, x + t * cols, cols, scale, out + t * cols);
  return scale;
}

void ActEmulator::set_input_scale(const QuantMatrix& w, float input_scale) {
  input_scales_[w.data.data()] = input_scale;
}

void ActEmulator::exclude(const QuantMatrix& w) { excluded_.insert(w.data.data()); }

const float* ActEmulator::apply(const QuantMatrix& w, const float* x, int64_t n_tok, std::vector<float>& buf) {
  if (mode_ == ActEmulation::kNone) return x;
  const uint8_t* key = w.data.data();
  if (excluded_.contains(key)) {
    seen_excluded_.insert(key);
    return x;
  }
  std::optional<float> scale;
  // MXFP4 has no global scale, so a checkpoint's input_scale has nothing to set there.
  if (mode_ != ActEmulation::kMxfp4) {
    if (const auto it = input_scales_.find(key); it != input_scales_.end()) scale = it->second;
  }
  (scale ? seen_static_ : seen_dynamic_).insert(key);
  buf.resize(size_t(n_tok * w.cols));
  fake_quantize_activations(mode_, x, n_tok, w.cols, scale, buf.data());
  return buf.data();
}

std::string ActEmulator::summary() const {
  if (mode_ == ActEmulation::kNone) return "none";
  std::string s = fmt::format("{} fake-quantized, F32 matmul (", act_emulation_name(mode_));
  if (mode_ == ActEmulation::kMxfp4) {
    s += fmt::format("E8M0 block scales, no global scale: {} linears", seen_dynamic_.size());
  } else {
    s += "global scale: ";
    if (!seen_static_.empty()) s += fmt::format("checkpoint input_scale for {} linears", seen_static_.size());
    if (!seen_static_.empty() && !seen_dynamic_.empty()) s += ", ";
    if (!seen_dynamic_.empty()) s += fmt::format("dynamic per-tensor amax for {} linears", seen_dynamic_.size());
    if (seen_static_.empty() && seen_dynamic_.empty()) s += "no linear ran yet";
  }
  if (!seen_excluded_.empty()) s += fmt::format("; {} not emulated (lm_head, as ModelOpt leaves it)", seen_excluded_.size());
  return s + ")";
}

}  // namespace imp
