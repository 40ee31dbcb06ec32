// Activation-quantization emulation ("fake quantization"): every emulated linear's input
// activations are quantized to a low-precision format and decoded back to F32 before an
// ordinary F32 matmul, so a W4A4 / W8A8 deployment's numerics can be previewed on any CPU.
// `imp run|perplexity|kld --act-emulate nvfp4|mxfp4|fp8`.
//
// NVFP4 (Blackwell W4A4, ModelOpt / TensorRT-LLM recipe; spec formats.md §1.4, §1.6, §6.2):
//   G   = the checkpoint's input_scale (ModelOpt writes amax/(6·448) from calibration), or
//         dynamic: amax(|x|) over the whole activation tensor (all n_tok rows) / (6·448)
//   per 16 consecutive elements of a row: s = block_amax / (6·G), S = E4M3 RNE cast of s
//   (s == 0 → 1, floor 2^-9, as ModelOpt's quantizer: formats/nvfp4_ckpt.h);
//   x̂ = E2M1_RNE(x / (S·G)) · S·G   (E2M1 saturates at ±6)
//   That is quantize_row_nvfp4_ckpt then dequantize_row_nvfp4_ckpt with tensor_scale G, with
//   one difference: a block scale above 448 (only possible with a static G the block's
//   amax exceeds) saturates to 448 as Blackwell's cvt.rn.satfinite does, where the
//   checkpoint quantizer's torch-style cast would give NaN. Deployment kernels (TensorRT-LLM,
//   vLLM) compute the same quantities with reciprocal multiplies instead of divisions, so an
//   element sitting exactly on an E2M1 rounding boundary can land one code apart there.
// MXFP4 (OCP MX v1.0): per 32 elements, E8M0 shared exponent floor(log2 amax) − 2, E2M1 RNE
//   (quantize/dequantize_row_mxfp4_ckpt); no global scale.
// FP8 (W8A8, E4M3 per tensor): s = input_scale (ModelOpt: amax/448) or dynamic amax/448;
//   x̂ = E4M3_saturating(x / s) · s.
//
// Which linears: every matmul the backend runs, except weights the model excludes — the
// llama forward excludes the output head (lm_head), which ModelOpt's NVFP4/FP8 configs leave
// unquantized ("*lm_head*" disabled), so a Blackwell deployment runs it in BF16.
// The dynamic per-tensor scale depends on which tokens share a forward pass (perplexity and
// kld feed whole chunks); a static checkpoint scale does not.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "formats/quant_matrix.h"

namespace imp {

enum class ActEmulation : uint8_t { kNone, kNvfp4, kMxfp4, kFp8 };

// "none", "nvfp4", "mxfp4", "fp8"; anything else is an imp::Error naming the choices.
ActEmulation parse_act_emulation(std::string_view s);
std::string_view act_emulation_name(ActEmulation e);

// The global scale a tensor of max |x| = amax gets dynamically: NVFP4 amax/(6·448), FP8
// amax/448 (1 for an all-zero tensor), MXFP4 1 (unused).
float act_emulation_dynamic_scale(ActEmulation e, float amax);

// One row of n elements (NVFP4: n % 16 == 0, MXFP4: n % 32 == 0) fake-quantized with the
// given global scale into out (out may equal x). kNone copies.
void fake_quant_row(ActEmulation e, const float* x, int64_t n, float global_scale, float* out);

// A whole activation tensor (n_tok, cols): the global scale is static_scale when given
// (must be positive and finite), else dynamic from amax(|x|). Returns the scale used.
float fake_quantize_activations(ActEmulation e, const float* x, int64_t n_tok, int64_t cols,
                                std::optional<float> static_scale, float* out);

// A backend's emulation state: the mode, the static input scales of the weights that
// have one and the weights left unemulated, keyed by the weight's data pointer (a model
// registers them once at load), plus which scale each emulated weight actually got.
class ActEmulator {
 public:
  explicit ActEmulator(ActEmulation mode = ActEmulation::kNone) : mode_(mode) {}
  ActEmulation mode() const { return mode_; }

  void set_input_scale(const QuantMatrix& w, float input_scale);
  void exclude(const QuantMatrix& w);

  // The activations the matmul with w should use: x itself when nothing is emulated for
  // w, else x fake-quantized into buf.
  const float* apply(const QuantMatrix& w, const float* x, int64_t n_tok, std::vector<float>& buf);

  // E.g. "nvfp4 (global scale: checkpoint input_scale for 210 linears; lm_head not emulated)".
  std::string summary() const;

 private:
  ActEmulation mode_;
  std::unordered_map<const uint8_t*, float> input_scales_;
  std::unordered_set<const uint8_t*> excluded_;
  std::unordered_set<const uint8_t*> seen_static_, seen_dynamic_, seen_excluded_;
};

}  // namespace imp
