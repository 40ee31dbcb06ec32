// libFuzzer target: parse_safetensors on arbitrary bytes (io/safetensors_reader.h).
// Any input must parse or raise imp::Error; a crash, sanitizer report or other exception
// is a bug. When it parses, every tensor span must lie inside the input.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "common/error.h"
#include "io/safetensors_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto f = imp::parse_safetensors(std::span<const uint8_t>(data, size), "fuzz.safetensors");
    for (const auto& t : f->tensors) {
      if (!t.data.empty() && (t.data.data() < data || t.data.data() + t.data.size() > data + size)) std::abort();
      volatile uint8_t sink = 0;
      for (uint8_t b : t.data) sink = sink ^ b;  // touch every byte: ASan checks the bounds
      (void)sink;
    }
  } catch (const imp::Error&) {
  }
  return 0;
}
