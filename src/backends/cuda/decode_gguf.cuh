// Device (and host) element decoders for the GGUF block formats the CUDA GEMV serves:
// Q4_0, Q8_0, Q4_K, Q6_K. Each returns element e of one row, bit-identical to the CPU
// reference dequantize_row_* (spec: /work/shared/specs/formats.md §2.3, §2.4), i.e. the
// same fp32 products in the same order with no FMA contraction.
//
// Two layouts of a row (backends/cuda/gemv.h WeightLayout):
//   native : the GGUF bytes, row = n/QK consecutive blocks (Q4_0 18 B, Q8_0 34 B,
//            Q4_K 144 B, Q6_K 210 B).
//   split  : made by repack_split(): every block's f16 `d` moved to a separate plane
//            (rows × n/QK halves) and the rest of the block kept in order as the "payload"
//            (Q4_0 16 B = qs, Q8_0 32 B = qs, Q6_K 208 B = ql|qh|scales), so every payload
//            starts on a 16-byte boundary and the GEMV can use 16-byte vector loads.
//            Q4_K needs no split: 144 B blocks are already 16-byte multiples.
#pragma once

#include "backends/cuda/decode_scalar.cuh"

namespace imp::cuda {

// ---- Q4_0: d f16 | qs[16]; y[j] = (lo(qs[j]) − 8)·d, y[j+16] = (hi(qs[j]) − 8)·d --------
inline constexpr int kQ4_0Bytes = 18, kQ4_0Payload = 16;
IMP_HD float q4_0_value(const uint8_t* qs, float d, int j /* 0..31 */) {
  const uint8_t b = qs[j & 15];
  const int q = j < 16 ? (b & 0xF) : (b >> 4);
  return imp_fmul_rn(float(q - 8), d);
}
IMP_HD float decode_q4_0(const uint8_t* row, int64_t e) {
  const uint8_t* blk = row + (e / 32) * kQ4_0Bytes;
  return q4_0_value(blk + 2, f16_bits_to_f32(load_le16(blk)), int(e % 32));
}

// ---- Q8_0: d f16 | qs int8[32]; y[e] = qs[e]·d -------------------------------------------
inline constexpr int kQ8_0Bytes = 34, kQ8_0Payload = 32;
IMP_HD float q8_0_value(const uint8_t* qs, float d, int j) { return imp_fmul_rn(float(int8_t(qs[j])), d); }
IMP_HD float decode_q8_0(const uint8_t* row, int64_t e) {
  const uint8_t* blk = row + (e / 32) * kQ8_0Bytes;
  return q8_0_value(blk + 2, f16_bits_to_f32(load_le16(blk)), int(e % 32));
}

// ---- Q4_K: d f16 | dmin f16 | scales[12] | qs[128] ----------------------------------------
// get_scale_min_k4: 6-bit scale and min of sub-block t (0..7) from the 12 packed bytes.
inline constexpr int kQ4_KBytes = 144;
IMP_HD void q4_k_scale_min(const uint8_t* s, int t, int& sc, int& m) {
  if (t < 4) {
    sc = s[t] & 63;
    m = s[t + 4] & 63;
  } else {
    sc = (s[t + 4] & 15) | ((s[t - 4] >> 6) << 4);
    m = (s[t + 4] >> 4) | ((s[t] >> 6) << 4);
  }
}
// y = (d·sc_t)·q − (dmin·m_t), q = nibble of qs[32·(e/64) + e%32], low for (e%64) < 32.
IMP_HD float q4_k_value(const uint8_t* blk, int e /* 0..255 */) {
  const float d = f16_bits_to_f32(load_le16(blk));
  const float dmin = f16_bits_to_f32(load_le16(blk + 2));
  int sc, m;
  q4_k_scale_min(blk + 4, e / 32, sc, m);
  const uint8_t b = blk[16 + 32 * (e / 64) + e % 32];
  const int q = (e % 64) < 32 ? (b & 0xF) : (b >> 4);
  return imp_fsub_rn(imp_fmul_rn(imp_fmul_rn(d, float(sc)), float(q)), imp_fmul_rn(dmin, float(m)));
}
IMP_HD float decode_q4_k(const uint8_t* row, int64_t e) {
  return q4_k_value(row + (e / 256) * kQ4_KBytes, int(e % 256));
}

// ---- Q6_K: ql[128] | qh[64] | scales int8[16] | d f16 -------------------------------------
// h = e/128, r = e%128, g = r/32, l = r%32: low4 from ql[64h + l + 32(g&1)] (low nibble for
// g < 2), high2 = (qh[32h + l] >> 2g) & 3, q = (low4 | high2 << 4) − 32, y = (d·sc[e/16])·q.
inline constexpr int kQ6_KBytes = 210, kQ6_KPayload = 208;
IMP_HD float q6_k_value(const uint8_t* payload, float d, int e /* 0..255 */) {
  const int h = e / 128, r = e % 128, g = r / 32, l = r % 32;
  const uint8_t b = payload[64 * h + l + 32 * (g & 1)];
  const int low4 = g < 2 ? (b & 0xF) : (b >> 4);
  const int high2 = (payload[128 + 32 * h + l] >> (2 * g)) & 3;
  const int q = (low4 | (high2 << 4)) - 32;
  const float sc = float(int8_t(payload[192 + e / 16]));
  return imp_fmul_rn(imp_fmul_rn(d, sc), float(q));
}
IMP_HD float decode_q6_k(const uint8_t* row, int64_t e) {
  const uint8_t* blk = row + (e / 256) * kQ6_KBytes;
  return q6_k_value(blk, f16_bits_to_f32(load_le16(blk + kQ6_KPayload)), int(e % 256));
}

}  // namespace imp::cuda
