// bitsandbytes NF4 (quant_method "bitsandbytes", load_in_4bit, bnb_4bit_quant_type "nf4").
// Spec: ../shared/specs/formats.md §8.3.
//   <p>.weight                                   U8  [(n+1)/2, 1]  codes of the flattened tensor,
//                                                                  element 2j in the HIGH nibble
//   <p>.weight.quant_state.bitsandbytes__nf4     U8  JSON bytes: quant_type, blocksize, shape, …
//   <p>.weight.absmax                            F32 [n/64], or U8 codes with double quantization:
//   <p>.weight.nested_absmax F32 [⌈blocks/nb⌉], <p>.weight.nested_quant_map F32 [256],
//   nested_offset / nested_blocksize (nb) in the JSON:
//     absmax[b] = nested_quant_map[q[b]] · nested_absmax[b / nb] + offset   (fp32, in this order)
// With in % 64 == 0 the flattened 64-blocks are the blocks of each row, so the codes are
// NF4's data plane as stored and absmax its scales plane. Double-quantized absmax is
// decoded here into ModelFile::owned (NF4's plane is F32; formats/nf4.h says the decode
// happens at load).
#include <cstring>

#include "common/error.h"
#include "io/schemes/scheme.h"

namespace imp {
namespace {

float f32_at(std::span<const uint8_t> p, int64_t i) {
  float v;
  std::memcpy(&v, p.data() + 4 * i, 4);
  return v;
}

}  // namespace

void load_bnb_nf4(SchemeContext& ctx, const std::string& module) {
  const std::string w_name = module + ".weight";
  const auto& w = ctx.need(w_name, {StDtype::U8}, "NF4 codes");
  const auto& qs = ctx.need(w_name + ".quant_state.bitsandbytes__nf4", {StDtype::U8}, "NF4 quant state");
  const auto& absmax = ctx.need(w_name + ".absmax", {StDtype::F32, StDtype::U8}, "NF4 absmax");
  if (const auto* qm = ctx.opt(w_name + ".quant_map", {StDtype::F32}, "NF4 quant map")) ctx.expect_shape(*qm, {16}, "NF4 quant map");
  const std::string state_name = *w.file + " " + qs.name;
  const auto state = parse_json_strict(std::string_view(reinterpret_cast<const char*>(qs.data.data()), qs.data.size()), state_name);
  if (!state.is_object()) fail("{}: not a JSON object", state_name);
  const auto get = [&](const char* key) -> const nlohmann::json& {
    const auto it = state.find(key);
    if (it == state.end()) fail("{}: missing '{}'", state_name, key);
    return *it;
  };
  if (get("quant_type") != "nf4") fail("{}: quant_type {} is not nf4", state_name, get("quant_type").dump());
  if (get("blocksize") != 64) fail("{}: blocksize {} is not supported (64 only)", state_name, get("blocksize").dump());
  const auto& shp = get("shape");
  if (!shp.is_array() || shp.size() != 2 || !shp[0].is_number_unsigned() || !shp[1].is_number_unsigned()) {
    fail("{}: shape {} must be [out, in]", state_name, shp.dump());
  }
  const int64_t n_out = shp[0].get<int64_t>(), n_in = shp[1].get<int64_t>();
  if (n_out <= 0 || n_in <= 0 || n_in % 64 != 0 || n_out > (int64_t(1) << 40) / n_in) {
    fail("{}: shape [{}, {}] needs a positive row length that is a multiple of 64", state_name, n_out, n_in);
  }
  ctx.expect_shape(w, {n_out * n_in / 2, 1}, "NF4 codes");
  const int64_t blocks = n_out * n_in / 64;
  TensorSource s = ctx.source_for(w, w_name, FormatId::NF4);
  s.shape = {n_out, n_in};
  ctx.expect_shape(absmax, {blocks}, "NF4 absmax");
  if (absmax.dtype == StDtype::F32) {
    s.scales = absmax.data;
    s.note = "bitsandbytes nf4";
  } else {
    const auto& nested = ctx.need(w_name + ".nested_absmax", {StDtype::F32}, "NF4 nested absmax");
    const auto& nmap = ctx.need(w_name + ".nested_quant_map", {StDtype::F32}, "NF4 nested quant map");
    ctx.expect_shape(nmap, {256}, "NF4 nested quant map");
    const auto& nb_j = get("nested_blocksize");
    const auto& off_j = get("nested_offset");
    if (!nb_j.is_number_unsigned() || nb_j.get<int64_t>() <= 0) fail("{}: bad nested_blocksize {}", state_name, nb_j.dump());
    if (!off_j.is_number()) fail("{}: bad nested_offset {}", state_name, off_j.dump());
    const int64_t nb = nb_j.get<int64_t>();
    const float offset = off_j.get<float>();
    ctx.expect_shape(nested, {(blocks + nb - 1) / nb}, "NF4 nested absmax");
    auto buf = std::make_unique<std::vector<uint8_t>>(size_t(blocks) * 4);
    for (int64_t b = 0; b < blocks; ++b) {
      const float v = f32_at(nmap.data, absmax.data[size_t(b)]) * f32_at(nested.data, b / nb) + offset;
      std::memcpy(buf->data() + 4 * b, &v, 4);
    }
    ctx.model.owned.push_back(std::move(buf));
    s.scales = *ctx.model.owned.back();
    s.note = "bitsandbytes nf4, double-quantized absmax decoded";
  }
  ctx.add(std::move(s));
}

}  // namespace imp
