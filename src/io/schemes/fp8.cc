// Scaled FP8 E4M3 checkpoints. Spec: ../shared/specs/formats.md §7.
//   <p>.weight            F8_E4M3 [out, in]
//   <p>.weight_scale      F32: [] / [1]                → FP8_E4M3_TENSOR (ModelOpt FP8, CT tensor,
//                                                         vLLM fp8 per-tensor)
//                         [out, 1] / [out]             → FP8_E4M3_CHANNEL (CT channel)
//                         [⌈out/128⌉, ⌈in/128⌉]        → FP8_E4M3_BLOCK128 (CT block)
//   <p>.weight_scale_inv  [⌈out/128⌉, ⌈in/128⌉]        → FP8_E4M3_BLOCK128 (DeepSeek-V3 style;
//                         despite the name it MULTIPLIES; F32, or F8_E8M0 widened to F32)
//   <p>.input_scale       F32 scalar, static activation multiplier (optional)
// Every scale multiplies: W = fp32(fp8) · scale. The shape picks the granularity and must
// agree with the config's strategy / weight_block_size when one is given. Only 128×128
// blocks have a format; other block sizes are an error. F16/BF16 row or tile scales are
// widened to F32 (exact).
#include <fmt/ranges.h>

#include "common/error.h"
#include "io/schemes/scheme.h"

namespace imp {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

void load_fp8(SchemeContext& ctx, const std::string& module) {
  const auto& w = ctx.need(module + ".weight", {StDtype::F8_E4M3}, "FP8 weight");
  const QuantConfig& q = ctx.quant;
  const StTensor* inv = ctx.opt(module + ".weight_scale_inv", {StDtype::F32, StDtype::BF16, StDtype::F8_E8M0},
                                "FP8 block scale (weight_scale_inv)");
  const StTensor& sc = inv ? *inv
                           : ctx.need(module + ".weight_scale", {StDtype::F32, StDtype::BF16, StDtype::F16},
                                      "FP8 weight scale");
  TensorSource s = ctx.source_for(w, module + ".weight", FormatId::FP8_E4M3_TENSOR);
  const bool scalar = sc.shape.empty() || (sc.shape.size() == 1 && sc.shape[0] == 1);
  const bool two_d = w.shape.size() == 2;
  const int64_t out = two_d ? w.shape[0] : 0, in = two_d ? w.shape[1] : 0;
  const bool tile_shape = two_d && sc.shape == std::vector<int64_t>{ceil_div(out, 128), ceil_div(in, 128)};
  const bool row_shape = two_d && (sc.shape == std::vector<int64_t>{out, 1} || sc.shape == std::vector<int64_t>{out});
  // The config's strategy decides where shapes coincide (a weight of ≤ 128 rows and
  // columns has a [1, 1] tile grid); otherwise the scale's shape does.
  std::string strategy = q.weight_strategy;
  if (inv) {
    strategy = "block";
  } else if (strategy.empty()) {
    strategy = scalar ? "tensor" : row_shape ? "channel" : "block";
  }
  const bool fits = strategy == "tensor" ? scalar : strategy == "channel" ? row_shape : strategy == "block" && tile_shape;
  if (!fits) {
    fail_tensor(sc, fmt::format("FP8 weight scale of shape [{}] does not fit strategy '{}' for a weight of shape [{}]",
                                fmt::join(sc.shape, ", "), strategy, fmt::join(w.shape, ", ")));
  }
  if (strategy == "tensor") {
    s.tensor_scale = ctx.scalar(sc, "FP8 per-tensor weight scale");
    s.note = q.label;
  } else {
    if (strategy == "channel") {
      s.format = FormatId::FP8_E4M3_CHANNEL;
      s.note = q.label;
    } else {
      if ((q.block_rows || q.block_cols) && (q.block_rows != 128 || q.block_cols != 128)) {
        fail_tensor(sc, fmt::format("FP8 block size {}x{} is not supported (128x128 only)", q.block_rows, q.block_cols));
      }
      s.format = FormatId::FP8_E4M3_BLOCK128;
      s.note = inv ? "fp8 block 128x128 (weight_scale_inv, multiplies)" : q.label;
    }
    s.scales = ctx.as_f32(sc, "FP8 weight scale");
  }
  if (const auto* in = ctx.opt(module + ".input_scale", {StDtype::F32, StDtype::BF16, StDtype::F16}, "FP8 input scale")) {
    s.input_scale = ctx.scalar(*in, "FP8 input scale");
  }
  ctx.add(std::move(s));
}

// compressed-tensors int-quantized channel (SmoothQuant W8A8), spec §8.4:
//   <p>.weight I8 [out, in]; <p>.weight_scale F32/F16/BF16 [out, 1] → INT8_CHANNEL.
void load_int8_channel(SchemeContext& ctx, const std::string& module) {
  const auto& w = ctx.need(module + ".weight", {StDtype::I8}, "INT8 weight");
  const auto& sc = ctx.need(module + ".weight_scale", {StDtype::F32, StDtype::BF16, StDtype::F16}, "INT8 weight scale");
  if (w.shape.size() != 2) fail_tensor(w, "INT8 weight must be 2-D [out, in]");
  if (!(sc.shape == std::vector<int64_t>{w.shape[0], 1} || sc.shape == std::vector<int64_t>{w.shape[0]})) {
    ctx.expect_shape(sc, {w.shape[0], 1}, "INT8 per-channel weight scale");
  }
  TensorSource s = ctx.source_for(w, module + ".weight", FormatId::INT8_CHANNEL);
  s.scales = ctx.as_f32(sc, "INT8 weight scale");
  if (const auto* zp = ctx.opt(module + ".weight_zero_point", {StDtype::I8, StDtype::I32, StDtype::F32}, "zero point")) {
    for (uint8_t b : zp->data) {
      if (b != 0) fail_tensor(*zp, "asymmetric INT8 weights (non-zero zero points) are not supported");
    }
  }
  if (const auto* in = ctx.opt(module + ".input_scale", {StDtype::F32, StDtype::BF16, StDtype::F16}, "INT8 input scale")) {
    s.input_scale = ctx.scalar(*in, "INT8 input scale");
  }
  s.note = ctx.quant.label;
  ctx.add(std::move(s));
}

}  // namespace imp
