// FormatId — every numeric format imp reads, writes or computes in.
// The traits of each live in one table (formats/traits.h); adding a format means one
// enum value, one table row and one file here.
#pragma once

#include <cstdint>

namespace imp {

enum class FormatId : uint8_t {
  // Scalars, one element per "block".
  F32,
  F16,
  BF16,
  F8_E4M3,  // OCP E4M3FN, unscaled
  F8_E5M2,
  E2M1,     // FP4, two per byte, element 2k in the low nibble
  E8M0,     // MX shared exponent
  UE4M3,    // NVFP4 block scale
  // GGUF block types (ggml layouts, scales inside the block).
  Q4_0,
  Q4_1,
  Q5_0,
  Q5_1,
  Q8_0,
  Q8_1,
  Q2_K,
  Q3_K,
  Q4_K,
  Q5_K,
  Q6_K,
  Q8_K,
  IQ4_NL,
  IQ4_XS,
  MXFP4,    // ggml MXFP4: E8M0 + 16 bytes, low nibbles = elements 0..15
  NVFP4,    // ggml NVFP4: 4 UE4M3 + 32 bytes per 64 elements
  // Checkpoint formats whose scales travel in separate tensors ("split" formats).
  NVFP4_CKPT,         // ModelOpt/compressed-tensors/Quark: E2M1 pairs, E4M3 per 16, F32 per tensor
  MXFP4_CKPT,         // OCP MX / gpt-oss: E2M1 pairs, E8M0 per 32
  FP8_E4M3_TENSOR,    // E4M3 weights × one F32 scale per tensor
  FP8_E4M3_CHANNEL,   // × one F32 scale per output row
  FP8_E4M3_BLOCK128,  // × one F32 scale per 128×128 tile
  INT8_CHANNEL,       // symmetric int8 × one F32 scale per output row
  INT4_GROUP,         // asymmetric uint4 (GPTQ/AWQ): F16 scale and uint4 zero per group
  NF4,                // bitsandbytes NF4: F32 absmax per 64 (double quantization decoded at load)
  COUNT
};

inline constexpr int kFormatCount = int(FormatId::COUNT);

}  // namespace imp
