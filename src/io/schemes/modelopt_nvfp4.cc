// ModelOpt NVFP4 (hf_quant_config.json quant_algo "NVFP4", or MIXED_PRECISION layers).
// Spec: ../shared/specs/formats.md §6.1, §6.3.
//   <p>.weight          U8       [out, in/2]   E2M1 pairs, element 2k low nibble
//   <p>.weight_scale    F8_E4M3  [out, in/16]  block scales
//   <p>.weight_scale_2  F32      [] or [1]     G, a multiplier → tensor_scale
//   <p>.input_scale     F32      [] or [1]     activation multiplier → input_scale (optional)
// alpha = input_scale · weight_scale_2.
#include "common/error.h"
#include "io/schemes/scheme.h"

namespace imp {

TensorSource nvfp4_planes(SchemeContext& ctx, const std::string& name, const StTensor& packed,
                          const StTensor& block_scale) {
  if (packed.shape.size() < 2) fail_tensor(packed, "NVFP4 packed weight must have 2 or more dims");
  std::vector<int64_t> shape = packed.shape;
  shape.back() *= 2;
  if (shape.back() % 16 != 0) fail_tensor(packed, fmt::format("NVFP4 row of {} elements is not a multiple of 16", shape.back()));
  std::vector<int64_t> scale_shape = shape;
  scale_shape.back() /= 16;
  ctx.expect_shape(block_scale, scale_shape, "NVFP4 block scale");
  TensorSource s = ctx.source_for(packed, name, FormatId::NVFP4_CKPT);
  s.shape = shape;
  s.scales = block_scale.data;
  return s;
}

void load_modelopt_nvfp4(SchemeContext& ctx, const std::string& module) {
  const auto& w = ctx.need(module + ".weight", {StDtype::U8}, "NVFP4 packed weight");
  const auto& ws = ctx.need(module + ".weight_scale", {StDtype::F8_E4M3}, "NVFP4 block scale");
  const auto& g = ctx.need(module + ".weight_scale_2", {StDtype::F32}, "NVFP4 global scale");
  TensorSource s = nvfp4_planes(ctx, module + ".weight", w, ws);
  s.tensor_scale = ctx.scalar(g, "NVFP4 global scale (weight_scale_2)");
  if (const auto* in = ctx.opt(module + ".input_scale", {StDtype::F32}, "NVFP4 input scale")) {
    s.input_scale = ctx.scalar(*in, "NVFP4 input scale");
  }
  s.note = "modelopt nvfp4";
  ctx.add(std::move(s));
}

}  // namespace imp
