// Float → integer casts as ggml's reference quantizers perform them on x86-64.
// ggml writes `(int8_t)(v + 0.5f)`, `(uint8_t)(…)`, `(int8_t)roundf(v)`: C leaves a cast of
// NaN or of an out-of-range value undefined, and x86-64 compilers emit cvttss2si, which
// truncates toward zero and returns INT32_MIN ("integer indefinite") for NaN and for
// anything outside int32; the narrow cast then keeps the low byte. Degenerate blocks
// (a scale whose reciprocal overflows, ±Inf input, an E8M0 exponent below 0) reach these
// cases, and llama-quantize on x86-64 writes the bytes this reproduces.
#pragma once

#include <cstdint>
#include <limits>

namespace imp {

inline int32_t cvtt_f32_i32(float v) {
  // The open interval (−2^31 − 1, 2^31) in floats: −2^31 is exact, the next float down
  // is −2^31 − 256, and 2^31 itself is already out of range.
  if (!(v > -2147483904.0f && v < 2147483648.0f)) return std::numeric_limits<int32_t>::min();
  return int32_t(v);
}

// (int8_t)v and (uint8_t)v: the low byte of the 32-bit truncation (C++20 conversions
// of an int to a narrower type are modular).
inline int8_t cast_f32_i8(float v) { return int8_t(cvtt_f32_i32(v)); }
inline uint8_t cast_f32_u8(float v) { return uint8_t(cvtt_f32_i32(v)); }

}  // namespace imp
