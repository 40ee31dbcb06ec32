// Bit casts and unaligned little-endian loads. Block structs such as Q8_0 (34 bytes)
// sit at unaligned addresses, so multi-byte fields are read with memcpy, never by
// casting pointers.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace imp {

static_assert(std::endian::native == std::endian::little, "imp assumes a little-endian host");

inline uint32_t f32_bits(float f) { return std::bit_cast<uint32_t>(f); }
inline float f32_from_bits(uint32_t u) { return std::bit_cast<float>(u); }

inline uint16_t load_u16(const void* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline uint32_t load_u32(const void* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline float load_f32(const void* p) {
  float v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store_u16(void* p, uint16_t v) { std::memcpy(p, &v, sizeof v); }
inline void store_u32(void* p, uint32_t v) { std::memcpy(p, &v, sizeof v); }
inline void store_f32(void* p, float v) { std::memcpy(p, &v, sizeof v); }

}  // namespace imp
