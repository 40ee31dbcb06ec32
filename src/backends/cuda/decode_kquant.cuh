// Device (and host) element decoders for the 256-element K-quant blocks beyond Q4_K / Q6_K:
// Q2_K, Q3_K, Q5_K and IQ4_XS. Bit-identical to the CPU reference dequantize_row_*
// (src/formats/<fmt>.cc; spec formats.md §2.4): per sub-block scale products first, then
// one product (and for Q2_K / Q5_K one subtraction) per element, no FMA contraction.
// Block layouts (native GGUF bytes):
//   Q2_K   84 B : scales[16] (lo 4 bits scale, hi 4 bits min) | qs[64] | d f16 | dmin f16
//                 e: h = e/128, r = e%128, q = (qs[32h + r%32] >> 2·(r/32)) & 3
//                 y = (d·(sc&15))·q − dmin·(sc>>4),  sc = scales[e/16]
//   Q3_K  110 B : hmask[32] | qs[64] | scales[12] | d f16
//                 q = ((qs[32h + l] >> 2g) & 3) − (hmask[l] bit 4h+g ? 0 : 4), g = r/32, l = r%32
//                 6-bit scale t = e/16: low 4 from scales[t] (t < 8) or scales[t−8] >> 4,
//                 high 2 from scales[8 + t%4] >> 2·(t/4);  y = (d·(scale − 32))·q
//   Q5_K  176 B : d f16 | dmin f16 | scales[12] (as Q4_K) | qh[32] | qs[128]
//                 q = nibble of qs[32·(e/64) + e%32] (low for e%64 < 32) | (qh[e%32] >> e/32 & 1) << 4
//                 y = (d·sc)·q − dmin·m  (sc, m of sub-block e/32, get_scale_min_k4)
//   IQ4_XS 136 B: d f16 | scales_h u16 | scales_l[4] | qs[128]
//                 scale t = e/32: (scales_l[t/2] >> 4(t%2) & 15 | (scales_h >> 2t & 3) << 4) − 32
//                 y = (d·scale)·kvalues_iq4nl[nibble of qs[16t + e%16], low for e%32 < 16]
#pragma once

#include "backends/cuda/decode_gguf.cuh"
#include "backends/cuda/decode_gguf_legacy.cuh"

namespace imp::cuda {

inline constexpr int kQ2_KBytes = 84, kQ3_KBytes = 110, kQ5_KBytes = 176, kIQ4_XSBytes = 136;

IMP_HD int q2_k_code(const uint8_t* blk, int e) {
  const int h = e / 128, r = e % 128;
  return (blk[16 + 32 * h + r % 32] >> (2 * (r / 32))) & 3;
}
IMP_HD float q2_k_value(const uint8_t* blk, int e) {
  const float d = f16_bits_to_f32(load_le16(blk + 80)), dmin = f16_bits_to_f32(load_le16(blk + 82));
  const uint8_t sc = blk[e / 16];
  const float dl = imp_fmul_rn(d, float(sc & 0xF)), ml = imp_fmul_rn(dmin, float(sc >> 4));
  return imp_fsub_rn(imp_fmul_rn(dl, float(q2_k_code(blk, e))), ml);
}

IMP_HD int q3_k_scale(const uint8_t* scales, int t) {
  const int low4 = t < 8 ? (scales[t] & 0xF) : (scales[t - 8] >> 4);
  const int high2 = (scales[8 + t % 4] >> (2 * (t / 4))) & 3;
  return low4 | (high2 << 4);
}
IMP_HD int q3_k_code(const uint8_t* blk, int e) {
  const int h = e / 128, r = e % 128, g = r / 32, l = r % 32;
  const int low2 = (blk[32 + 32 * h + l] >> (2 * g)) & 3;
  const int hb = (blk[l] >> (4 * h + g)) & 1;
  return low2 - (hb ? 0 : 4);
}
IMP_HD float q3_k_value(const uint8_t* blk, int e) {
  const float d = f16_bits_to_f32(load_le16(blk + 108));
  const float dl = imp_fmul_rn(d, float(q3_k_scale(blk + 96, e / 16) - 32));
  return imp_fmul_rn(dl, float(q3_k_code(blk, e)));
}

IMP_HD int q5_k_code(const uint8_t* blk, int e) {
  const uint8_t byte = blk[48 + 32 * (e / 64) + e % 32];
  const int low4 = e % 64 < 32 ? (byte & 0xF) : (byte >> 4);
  return low4 | (((blk[16 + e % 32] >> (e / 32)) & 1) << 4);
}
IMP_HD float q5_k_value(const uint8_t* blk, int e) {
  const float d = f16_bits_to_f32(load_le16(blk)), dmin = f16_bits_to_f32(load_le16(blk + 2));
  int sc, m;
  q4_k_scale_min(blk + 4, e / 32, sc, m);
  const float dl = imp_fmul_rn(d, float(sc)), ml = imp_fmul_rn(dmin, float(m));
  return imp_fsub_rn(imp_fmul_rn(dl, float(q5_k_code(blk, e))), ml);
}

IMP_HD int iq4_xs_scale(const uint8_t* blk, int t) {
  const int scales_h = load_le16(blk + 2);
  return (((blk[4 + t / 2] >> (4 * (t % 2))) & 0xF) | (((scales_h >> (2 * t)) & 3) << 4)) - 32;
}
IMP_HD int iq4_xs_code(const uint8_t* blk, int e) {
  const uint8_t byte = blk[8 + 16 * (e / 32) + (e % 32) % 16];
  return iq4nl_value(e % 32 < 16 ? (byte & 0xF) : (byte >> 4));
}
IMP_HD float iq4_xs_value(const uint8_t* blk, int e) {
  const float dl = imp_fmul_rn(f16_bits_to_f32(load_le16(blk)), float(iq4_xs_scale(blk, e / 32)));
  return imp_fmul_rn(dl, float(iq4_xs_code(blk, e)));
}

IMP_HD float decode_q2_k(const uint8_t* row, int64_t e) { return q2_k_value(row + (e / 256) * kQ2_KBytes, int(e % 256)); }
IMP_HD float decode_q3_k(const uint8_t* row, int64_t e) { return q3_k_value(row + (e / 256) * kQ3_KBytes, int(e % 256)); }
IMP_HD float decode_q5_k(const uint8_t* row, int64_t e) { return q5_k_value(row + (e / 256) * kQ5_KBytes, int(e % 256)); }
IMP_HD float decode_iq4_xs(const uint8_t* row, int64_t e) {
  return iq4_xs_value(row + (e / 256) * kIQ4_XSBytes, int(e % 256));
}

}  // namespace imp::cuda
