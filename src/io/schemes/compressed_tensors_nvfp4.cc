// compressed-tensors NVFP4 (format "nvfp4-pack-quantized", strategy tensor_group, group 16).
// Spec: ../shared/specs/formats.md §6.1; vLLM compressed_tensors_w4a4_nvfp4.py.
//   <p>.weight_packed        U8       [out, in/2]
//   <p>.weight_scale         F8_E4M3  [out, in/16]
//   <p>.weight_global_scale  F32      [1]   a DIVISOR (448·6/amax): tensor_scale = 1 / it
//   <p>.input_global_scale   F32      [1]   a divisor too: input_scale = 1 / it (optional)
#include <cstring>

#include "common/error.h"
#include "io/schemes/scheme.h"

namespace imp {

void load_compressed_tensors_nvfp4(SchemeContext& ctx, const std::string& module) {
  const auto& w = ctx.need(module + ".weight_packed", {StDtype::U8}, "NVFP4 packed weight");
  const auto& ws = ctx.need(module + ".weight_scale", {StDtype::F8_E4M3}, "NVFP4 block scale");
  const auto& g = ctx.need(module + ".weight_global_scale", {StDtype::F32}, "NVFP4 global scale");
  TensorSource s = nvfp4_planes(ctx, module + ".weight", w, ws);
  const float wgs = ctx.scalar(g, "weight_global_scale");
  if (wgs == 0.0f) fail_tensor(g, "weight_global_scale is 0 (it is a divisor)");
  s.tensor_scale = 1.0f / wgs;
  if (const auto* in = ctx.opt(module + ".input_global_scale", {StDtype::F32}, "NVFP4 input global scale")) {
    const float igs = ctx.scalar(*in, "input_global_scale");
    if (igs == 0.0f) fail_tensor(*in, "input_global_scale is 0 (it is a divisor)");
    s.input_scale = 1.0f / igs;
  }
  // The logical shape, when stored, must agree with the packed one.
  if (const auto* shp = ctx.opt(module + ".weight_shape", {StDtype::I64, StDtype::I32}, "weight_shape")) {
    std::vector<int64_t> want;
    for (int64_t i = 0; i < shp->elements(); ++i) {
      if (shp->dtype == StDtype::I64) {
        int64_t v;
        std::memcpy(&v, shp->data.data() + 8 * i, 8);
        want.push_back(v);
      } else {
        int32_t v;
        std::memcpy(&v, shp->data.data() + 4 * i, 4);
        want.push_back(v);
      }
    }
    if (want != s.shape) fail_tensor(*shp, "weight_shape disagrees with the packed weight's shape");
  }
  s.note = "compressed-tensors nvfp4 (global scales inverted)";
  ctx.add(std::move(s));
}

}  // namespace imp
