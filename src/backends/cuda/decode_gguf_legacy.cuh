// Device (and host) element decoders for the 32/64-element ggml block formats beyond Q4_0 /
// Q8_0: Q4_1, Q5_0, Q5_1, IQ4_NL, MXFP4 (ggml) and NVFP4 (ggml). Each is bit-identical to
// the CPU reference dequantize_row_* (src/formats/<fmt>.cc; spec formats.md §2.3): the same
// fp32 products and sums in the same order, no FMA contraction (imp_fmul_rn / imp_fadd_rn).
// Block layouts (little-endian, native GGUF bytes, no alignment beyond 2 bytes):
//   Q4_1   20 B : d f16 | m f16 | qs[16]             y = q·d + m,  q = nibble
//   Q5_0   22 B : d f16 | qh u32 | qs[16]            y = (q − 16)·d, q = nibble | bit j of qh << 4
//   Q5_1   24 B : d f16 | m f16 | qh u32 | qs[16]    y = q·d + m
//   IQ4_NL 18 B : d f16 | qs[16]                     y = d·kvalues_iq4nl[nibble]
//   MXFP4  17 B : e E8M0 | qs[16]                    y = (2·E2M1)·2^(e−128)
//   NVFP4  36 B : d[4] UE4M3 | qs[32], 64 weights in 4 sub-blocks of 16:
//                 y[16s + j] (j < 8) = 2·E2M1(lo(qs[8s + j]))·d_s/2, y[16s + 8 + j] from hi
// Nibble order of the 32-weight formats: element j < 16 is the low nibble of qs[j], element
// j + 16 the high nibble.
#pragma once

#include "backends/cuda/decode_scalar.cuh"

namespace imp::cuda {

inline constexpr int kQ4_1Bytes = 20, kQ5_0Bytes = 22, kQ5_1Bytes = 24, kIQ4_NLBytes = 18, kMXFP4Bytes = 17,
                     kNVFP4Bytes = 36;

IMP_HD int nibble32(const uint8_t* qs, int j) { return j < 16 ? (qs[j] & 0xF) : (qs[j - 16] >> 4); }
IMP_HD uint32_t load_le32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// ggml kvalues_iq4nl {−127, −104, −83, −65, −49, −35, −22, −10, 1, 13, 25, 38, 53, 69, 89, 113}
// as two little-endian int8 octets: no table in memory, so no local-memory indexing on device.
IMP_HD int iq4nl_value(int idx) {
  const uint64_t lo = 0xF6EADDCFBFAD9881ull, hi = 0x7159453526190D01ull;
  return int(int8_t(uint8_t(((idx < 8) ? lo : hi) >> (8 * (idx & 7)))));
}

IMP_HD float q4_1_value(const uint8_t* blk, int j) {
  const float d = f16_bits_to_f32(load_le16(blk)), m = f16_bits_to_f32(load_le16(blk + 2));
  return imp_fadd_rn(imp_fmul_rn(float(nibble32(blk + 4, j)), d), m);
}
IMP_HD float q5_0_value(const uint8_t* blk, int j) {
  const float d = f16_bits_to_f32(load_le16(blk));
  const uint32_t qh = load_le32(blk + 2);
  const int q = (nibble32(blk + 6, j) | int((qh >> j) & 1) << 4) - 16;
  return imp_fmul_rn(float(q), d);
}
IMP_HD float q5_1_value(const uint8_t* blk, int j) {
  const float d = f16_bits_to_f32(load_le16(blk)), m = f16_bits_to_f32(load_le16(blk + 2));
  const uint32_t qh = load_le32(blk + 4);
  const int q = nibble32(blk + 8, j) | int((qh >> j) & 1) << 4;
  return imp_fadd_rn(imp_fmul_rn(float(q), d), m);
}
IMP_HD float iq4_nl_value(const uint8_t* blk, int j) {
  return imp_fmul_rn(f16_bits_to_f32(load_le16(blk)), float(iq4nl_value(nibble32(blk + 2, j))));
}
IMP_HD float mxfp4_value(const uint8_t* blk, int j) {
  return imp_fmul_rn(float(e2m1_times_two(uint32_t(nibble32(blk + 1, j)))), e8m0_half_ggml(blk[0]));
}
IMP_HD float nvfp4_value(const uint8_t* blk, int e /* 0..63 */) {
  const int s = e / 16, j = e % 16;
  const uint8_t q = blk[4 + 8 * s + (j & 7)];
  const uint32_t code = j < 8 ? (q & 0xF) : (q >> 4);
  return imp_fmul_rn(float(e2m1_times_two(code)), ue4m3_half_ggml(blk[s]));
}

IMP_HD float decode_q4_1(const uint8_t* row, int64_t e) { return q4_1_value(row + (e / 32) * kQ4_1Bytes, int(e % 32)); }
IMP_HD float decode_q5_0(const uint8_t* row, int64_t e) { return q5_0_value(row + (e / 32) * kQ5_0Bytes, int(e % 32)); }
IMP_HD float decode_q5_1(const uint8_t* row, int64_t e) { return q5_1_value(row + (e / 32) * kQ5_1Bytes, int(e % 32)); }
IMP_HD float decode_iq4_nl(const uint8_t* row, int64_t e) {
  return iq4_nl_value(row + (e / 32) * kIQ4_NLBytes, int(e % 32));
}
IMP_HD float decode_mxfp4(const uint8_t* row, int64_t e) { return mxfp4_value(row + (e / 32) * kMXFP4Bytes, int(e % 32)); }
IMP_HD float decode_nvfp4(const uint8_t* row, int64_t e) { return nvfp4_value(row + (e / 64) * kNVFP4Bytes, int(e % 64)); }

}  // namespace imp::cuda
