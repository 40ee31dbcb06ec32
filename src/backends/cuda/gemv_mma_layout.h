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
// Scale planes: Q4_0 and Q8_0 keep the kSplit d plane (rows × cols/32 f16); Q4_K the
// superblocks' 16-byte headers (d, dmin, the 12 packed 6-bit scales and mins; rows ×
// cols/256 × 16 bytes); NVFP4_CKPT and MXFP4_CKPT keep their native scale planes.
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
    case FormatId::NVFP4_CKPT:
    case FormatId::MXFP4_CKPT: return 128;
    case FormatId::Q8_0: return 64;
    default: return 0;
  }
}
IMP_MMA_HD int code_bits(FormatId f) { return f == FormatId::Q8_0 ? 8 : 4; }

// Unit column of the code at (thread c, word w, position p).
IMP_MMA_HD int unit_column(FormatId f, int c, int w, int p) {
  switch (f) {
    case FormatId::Q4_0:
    case FormatId::Q4_K: return 16 * (2 * w + (p & 1)) + 4 * c + 2 * ((p >> 1) & 1) + (p >> 2);
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
    case FormatId::Q4_K: w = chunk / 2; return (chunk & 1) + 2 * (t >> 1) + 4 * (t & 1);
    case FormatId::NVFP4_CKPT:
    case FormatId::MXFP4_CKPT: w = chunk / 2; return (chunk & 1) + 2 * (t & 1) + 4 * (t >> 1);
    case FormatId::Q8_0: w = chunk; return t;
    default: w = -1; return -1;
  }
}

// Byte offset of the code's word inside its unit, and the code's bit offset in that word.
IMP_MMA_HD int word_offset(int c, int w) { return 16 * c + 4 * w; }
IMP_MMA_HD int bit_offset(FormatId f, int p) { return code_bits(f) * p; }

}  // namespace imp::cuda::mma_layout
