// AMD Quark NVFP4, folded as vLLM's QuarkNVFP4 does.
// Spec: ../shared/specs/formats.md §6.1 (G a multiplier, as ModelOpt — UNVERIFIED against
// Quark's exporter, inferred from vLLM's non-emulation path).
//   <p>.weight          U8       [out, in/2]
//   <p>.weight_scale    F8_E4M3  [out, in/16]
//   <p>.weight_scale_2  F32/BF16 scalar   → tensor_scale
//   <p>.input_scale_2   F32/BF16 scalar   → input_scale;  alpha = input_scale_2 · weight_scale_2
// Fused q/k/v and gate/up partitions with different global scales are reported by
// warn_fused_scale_mismatch (vLLM keeps only the max of them).
#include "common/error.h"
#include "io/schemes/scheme.h"

namespace imp {

void load_quark_nvfp4(SchemeContext& ctx, const std::string& module) {
  const auto& w = ctx.need(module + ".weight", {StDtype::U8}, "NVFP4 packed weight");
  const auto& ws = ctx.need(module + ".weight_scale", {StDtype::F8_E4M3}, "NVFP4 block scale");
  const auto& g = ctx.need(module + ".weight_scale_2", {StDtype::F32, StDtype::BF16}, "NVFP4 global scale");
  TensorSource s = nvfp4_planes(ctx, module + ".weight", w, ws);
  s.tensor_scale = ctx.scalar(g, "weight_scale_2");
  if (const auto* in = ctx.opt(module + ".input_scale_2", {StDtype::F32, StDtype::BF16}, "NVFP4 input global scale")) {
    s.input_scale = ctx.scalar(*in, "input_scale_2");
    s.note = fmt::format("quark nvfp4, alpha {}", *s.input_scale * s.tensor_scale);
  } else {
    s.note = "quark nvfp4";
  }
  ctx.add(std::move(s));
}

}  // namespace imp
