// gpt-oss MXFP4 experts (quantization_config.quant_method "mxfp4").
// Spec: ../shared/specs/formats.md §6.5 (transformers integrations/mxfp4.py).
//   <p>_blocks  U8              [E, R, C/32, 16]  16 bytes = 32 E2M1 codes, byte k: element 2k low
//   <p>_scales  U8 / F8_E8M0    [E, R, C/32]      one E8M0 exponent per 32 inputs
// Each expert's rows are contiguous and already in MXFP4_CKPT's canonical planes, so the
// result is one stacked TensorSource "<p>" of shape [E, R, C] (slice_outer(e) gives expert
// e). gate_up_proj interleaves by row: even rows gate, odd rows up. A 3-D [R, C/32, 16]
// (no expert dim) gives a plain [R, C] weight.
#include "common/error.h"
#include "io/schemes/scheme.h"

namespace imp {

void load_mxfp4(SchemeContext& ctx, const std::string& param) {
  const auto& b = ctx.need(param + "_blocks", {StDtype::U8}, "MXFP4 blocks");
  const auto& sc = ctx.need(param + "_scales", {StDtype::U8, StDtype::F8_E8M0}, "MXFP4 scales");
  if (b.shape.size() < 3 || b.shape.back() != 16) fail_tensor(b, "MXFP4 blocks must be [..., rows, cols/32, 16]");
  std::vector<int64_t> scale_shape(b.shape.begin(), b.shape.end() - 1);
  ctx.expect_shape(sc, scale_shape, "MXFP4 scales");
  TensorSource s = ctx.source_for(b, param, FormatId::MXFP4_CKPT);
  s.shape = scale_shape;
  s.shape.back() *= 32;
  s.scales = sc.data;
  s.note = param.ends_with("gate_up_proj") ? "gpt-oss mxfp4, rows interleaved: even gate, odd up" : "gpt-oss mxfp4";
  ctx.add(std::move(s));
}

}  // namespace imp
