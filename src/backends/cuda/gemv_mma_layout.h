// The kMma weight layout of the tensor-core decode GEMV (gemv_mma.cu): where each weight
// code of a row sits so that one 16-byte load per thread and a few bit operations give the
// thread its A fragments of `mma.sync.m16n8k16` (f16 in, f32 accumulate).
//
// Shapes. A row is cut into units of U columns (U = 128 for the 4-bit formats, 64 for
// Q8_0); unit u of row r is 64 payload bytes at data + r·(row bytes) + 64·u, and thread c
// (= lane % 4) of a quad owns the 16 bytes at offset 16·c. A unit holds kChunks = U/16
// chunks of 16 columns (the k16 of one MMA). Thread c holds the MMA k-slots {2c, 2c+1}
// (A register a0/a1, B register b0) and {2c+8, 2c+9} (a2/a3, b1) of every chunk; the slots
// are given the chunk columns 4c, 4c+1 and 4c+2, 4c+3, so the thread's share of x for a
// chunk is one float4 (any column↔slot assignment works when A and B use the same one). A
// chunk never straddles a scale block (16 for NVFP4, 32 for Q4_0 / Q8_0 / MXFP4), so the
// MMA over a chunk (or the two chunks of a 32-block) is one block's Σ q·x and the block
// scale is applied to it in FP32 afterwards: weights enter the MMA as exact small integers
// or E2M1·2^-6 values, never rounded.
//
// Within a thread's 16 bytes (four 32-bit words w = 0..3, code position p in a word), the
// code of chunk column 4c + t:
//   Q4_0   word w = block w of the unit (chunks 2w, 2w+1); nibble p (bits 4p..4p+3) holds
//          chunk 2w + (p & 1), t = 2·((p >> 1) & 1) + (p >> 2). Then
//          (v & 0x000F000F) | 0x64006400 is the f16 pair 1024 + (t = 0, 1) of chunk 2w,
//          the 0x00F000F0 mask the same for chunk 2w+1 (×16), v >> 8 gives t = 2, 3.
//   NVFP4_CKPT, MXFP4_CKPT  word w = chunks 2w, 2w+1; nibble p holds chunk 2w + (p & 1),
//          t = ((p >> 1) & 1) + 2·(p >> 2): the low nibbles of the word's bytes, widened to
//          E4M3 bytes, are t = (0, 1), (2, 3) of chunk 2w for the hardware e4m3x2 → f16x2
//          conversion; the high nibbles those of chunk 2w+1.
//   Q4_K   as Q4_0, word w = sub-block w of the unit (a unit is half a 256-superblock); the
//          codes are the unsigned q (no offset).
//   Q8_0   word w = chunk w; byte p holds t = p.
//   Q6_K   two planes per payload row: bytes [0, cols/2) are the low nibbles of the codes
//          (the unsigned q = 0 … 63) arranged exactly as Q4_K's (64 bytes per unit);
//          bytes [cols/2, 3·cols/4) their high two bits, 32 bytes per unit, thread c's 8
//          bytes at 8c: hi word i (0, 1) holds those of lo words 2i and 2i + 1, the code at
//          nibble p of lo word w at bit hi_bit(Q6_K, w, p) = {4, 8, 0, 12, 20, 24, 16, 28}[p]
//          + 2·(w & 1). So (hi >> 2·(w & 1)) ANDed with 0x00300030 (or 0x03000300, or after
//          a shift by 4) drops the two bits right above the nibble the Q4_0 masks select:
//          hi_f16_biased gives the f16 1024 + q (or 1024 + 16q) of all eight codes in two
//          LOP3 per pair. Two planes, not one 96-byte unit, so that the TMA and cp.async
//          copies and the conflict-free 16-byte shared loads of the 4-bit kernels stay as
//          they are and the high bits come as one more 8-byte load.
//   Q5_K   as Q6_K with one high bit per code (Q4_K's q + 16·bit, 0 … 31): a 16-byte unit
//          in the high-bit plane, thread c's one word at 4c holding all four lo words'
//          bits, lo word w's at hi_bit(Q5_K, w, p) = {4, 8, 0, 12, 20, 24, 16, 28}[p] + w.
// Scale planes: Q4_0 and Q8_0 keep the kSplit d plane (rows × cols/32 f16); Q4_K the
// superblocks' 16-byte headers (d, dmin, the 12 packed 6-bit scales and mins; rows ×
// cols/256 × 16 bytes); Q6_K a 16-byte slot per unit (its 8 int8 sub-block scales, then the
// superblock's f16 d, then 6 zero bytes: rows × cols/128 × 16 bytes — 1 bit per weight
// instead of the native 0.56, so that every kernel loads a unit's scales as one aligned
// 16-byte slot); Q5_K Q4_K's header plane (its block starts with the same 16 bytes);
// NVFP4_CKPT and MXFP4_CKPT keep their native scale planes.
//
// Plain C++ (host and device): the repack, the device dequantizer and the host tests all
// use these maps.
#pragma once

#include <cstdint>

#include "formats/format_id.h"

#if defined(__CUDACC__)
#define IMP_MMA_HD __host__ __device__ __forceinline__ constexpr
#else
#define IMP_MMA_HD inline constexpr
#endif

namespace imp::cuda::mma_layout {

inline constexpr int kUnitBytes = 64;  // one quad × 16 bytes

// Columns per unit, or 0 when the format has no kMma layout.
IMP_MMA_HD int unit_cols(FormatId f) {
  switch (f) {
    case FormatId::Q4_0:
    case FormatId::Q4_K:
    case FormatId::Q5_K:
    case FormatId::Q6_K:
    case FormatId::NVFP4_CKPT:
    case FormatId::MXFP4_CKPT: return 128;
    case FormatId::Q8_0: return 64;
    default: return 0;
  }
}
// Payload bits per weight (Q5_K, Q6_K: both planes), and the codes of one 32-bit payload word
// (Q5_K, Q6_K: of its low-nibble plane).
IMP_MMA_HD int code_bits(FormatId f) {
  return f == FormatId::Q8_0 ? 8 : f == FormatId::Q6_K ? 6 : f == FormatId::Q5_K ? 5 : 4;
}
IMP_MMA_HD int codes_per_word(FormatId f) { return f == FormatId::Q8_0 ? 4 : 8; }

// Unit column of the code at (thread c, word w, position p).
IMP_MMA_HD int unit_column(FormatId f, int c, int w, int p) {
  switch (f) {
    case FormatId::Q4_0:
    case FormatId::Q4_K:
    case FormatId::Q5_K:
    case FormatId::Q6_K: return 16 * (2 * w + (p & 1)) + 4 * c + 2 * ((p >> 1) & 1) + (p >> 2);
    case FormatId::NVFP4_CKPT:
    case FormatId::MXFP4_CKPT: return 16 * (2 * w + (p & 1)) + 4 * c + ((p >> 1) & 1) + 2 * (p >> 2);
    case FormatId::Q8_0: return 16 * w + 4 * c + p;
    default: return -1;
  }
}

// Inverse: where unit column e lives. Returns the code position p; sets c and w.
IMP_MMA_HD int code_position(FormatId f, int e, int& c, int& w) {
  const int chunk = e / 16, t = e % 4;
  c = (e % 16) / 4;
  switch (f) {
    case FormatId::Q4_0:
    case FormatId::Q4_K:
    case FormatId::Q5_K:
    case FormatId::Q6_K: w = chunk / 2; return (chunk & 1) + 2 * (t >> 1) + 4 * (t & 1);
    case FormatId::NVFP4_CKPT:
    case FormatId::MXFP4_CKPT: w = chunk / 2; return (chunk & 1) + 2 * (t & 1) + 4 * (t >> 1);
    case FormatId::Q8_0: w = chunk; return t;
    default: w = -1; return -1;
  }
}

// Byte offset of the code's word inside its unit, and the code's bit offset in that word.
IMP_MMA_HD int word_offset(int c, int w) { return 16 * c + 4 * w; }
IMP_MMA_HD int bit_offset(FormatId f, int p) { return (f == FormatId::Q8_0 ? 8 : 4) * p; }

// ---- the high-bit plane of Q5_K (1 bit per code) and Q6_K (2 bits) ----------------------
// hi_bits per code; a thread's share of a unit (32 codes) is 4·hi_bits bytes at
// hi_thread_bytes·c of the unit's 16·hi_bits bytes, which start at q5_q6 row offset
// hi_plane(cols) + 16·hi_bits·u. Lo word w's bits sit in hi word hi_word_offset(f, c, w) at
// hi_bit(f, w, p) = {4, 8, 0, 12, 20, 24, 16, 28}[p] + hi_word_shift(f, w): shifted right by
// hi_word_shift, each nibble's high bits lie right above the bits the Q4_0 masks select.
IMP_MMA_HD int hi_bits(FormatId f) { return f == FormatId::Q6_K ? 2 : f == FormatId::Q5_K ? 1 : 0; }
IMP_MMA_HD int hi_thread_bytes(FormatId f) { return 4 * hi_bits(f); }
IMP_MMA_HD int hi_unit_bytes(FormatId f) { return 16 * hi_bits(f); }
IMP_MMA_HD int64_t hi_plane(int64_t cols) { return cols / 2; }
IMP_MMA_HD int hi_word_offset(FormatId f, int c, int w) {
  return hi_thread_bytes(f) * c + (f == FormatId::Q6_K ? 4 * (w / 2) : 0);
}
IMP_MMA_HD int hi_word_shift(FormatId f, int w) { return f == FormatId::Q6_K ? 2 * (w & 1) : w; }
IMP_MMA_HD int hi_bit(FormatId f, int w, int p) {
  return 4 * int((0x74653021u >> (4 * p)) & 0xFu) + hi_word_shift(f, w);
}

// f16 bit pairs of lo word v's eight codes q = nibble | high bits << 4, hh = its hi word
// shifted right by hi_word_shift: k = 0 → (1024 + q) of t = 0, 1 of chunk 2w; k = 1 → t = 2, 3;
// k = 2, 3 → (1024 + 16q) of t = 0, 1 / 2, 3 of chunk 2w + 1 (all exact: q < 64). Plain
// bit operations, so the host tests check the very expressions the kernels compile (two
// LOP3 each, shifts shared). kHiBits: 1 (Q5_K) or 2 (Q6_K).
template <int kHiBits>
IMP_MMA_HD uint32_t hi_f16_biased(uint32_t v, uint32_t hh, int k) {
  constexpr uint32_t lo = kHiBits == 2 ? 0x00300030u : 0x00100010u, hi = lo << 4;
  switch (k) {
    case 0: return (v & 0x000F000Fu) | (hh & lo) | 0x64006400u;
    case 1: return ((v >> 8) & 0x000F000Fu) | ((hh << 4) & lo) | 0x64006400u;
    case 2: return (v & 0x00F000F0u) | (hh & hi) | 0x64006400u;
    default: return ((v >> 8) & 0x00F000F0u) | ((hh >> 4) & hi) | 0x64006400u;
  }
}

// The payload words of thread c of a unit, from code(e) = the 6-bit (Q6_K) or 4-bit / 8-bit
// code of unit column e: the (lo) word w, and Q6_K's hi word i. The load-time repack and
// the host tests build the layout with these.
template <class Code>
IMP_MMA_HD uint32_t pack_word(FormatId f, int c, int w, const Code& code) {
  uint32_t word = 0;
  const int n = codes_per_word(f);
  for (int p = 0; p < n; ++p) {
    const uint32_t q = uint32_t(code(unit_column(f, c, w, p)));
    word |= (f == FormatId::Q8_0 ? q & 0xFFu : q & 0xFu) << bit_offset(f, p);
  }
  return word;
}
// Unit u's 16-byte scale slot from its native 210-byte Q6_K block (ql[128] qh[64]
// scales[16] d): the 8 int8 scales of half u & 1, d, zeros.
IMP_MMA_HD void q6_scale_slot(const uint8_t* block, int u, uint8_t (&slot)[16]) {
  for (int j = 0; j < 8; ++j) slot[j] = block[192 + 8 * (u & 1) + j];
  slot[8] = block[208], slot[9] = block[209];
  for (int j = 10; j < 16; ++j) slot[j] = 0;
}
// Hi word i of thread c (Q6_K: i = 0, 1, for lo words 2i, 2i + 1; Q5_K: i = 0, all four).
template <class Code>
IMP_MMA_HD uint32_t pack_hi_word(FormatId f, int c, int i, const Code& code) {
  uint32_t word = 0;
  const int per = f == FormatId::Q6_K ? 2 : 4, mask = (1 << hi_bits(f)) - 1;
  for (int w = per * i; w < per * i + per; ++w) {
    for (int p = 0; p < 8; ++p) word |= ((uint32_t(code(unit_column(f, c, w, p))) >> 4) & uint32_t(mask)) << hi_bit(f, w, p);
  }
  return word;
}

}  // namespace imp::cuda::mma_layout
