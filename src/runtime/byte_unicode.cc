#include "runtime/byte_unicode.h"

#include <array>
#include <unordered_map>

#include "runtime/utf8.h"

namespace imp {
namespace {

constexpr bool kept_as_is(uint32_t b) {
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct Tables {
  std::array<std::string, 256> spell;
  std::unordered_map<uint32_t, uint8_t> back;  // code point → byte
  Tables() {
    uint32_t next = 0x100;
    for (uint32_t b = 0; b < 256; ++b) {
      const uint32_t cp = kept_as_is(b) ? b : next++;
      utf8_append(spell[b], cp);
      back.emplace(cp, static_cast<uint8_t>(b));
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

// Decodes one well-formed code point of length n at s[pos].
uint32_t decode_cp(std::string_view s, size_t pos, size_t n) {
  const auto b = [&](size_t k) { return static_cast<uint32_t>(static_cast<uint8_t>(s[pos + k])); };
  switch (n) {
    case 1: return b(0);
    case 2: return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    case 3: return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    default: return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
}

}  // namespace

const std::string& byte_to_unicode(uint8_t b) { return tables().spell[b]; }

void bytes_to_unicode(std::string_view bytes, std::string& out) {
  const auto& t = tables();
  for (const char c : bytes) out += t.spell[static_cast<uint8_t>(c)];
}

std::optional<std::string> unicode_to_bytes(std::string_view spelled) {
  const auto& t = tables();
  std::string out;
  out.reserve(spelled.size());
  for (size_t pos = 0; pos < spelled.size();) {
    const size_t n = utf8_char_len(spelled, pos);
    if (n == 1 && static_cast<uint8_t>(spelled[pos]) >= 0x80) return std::nullopt;
    const auto it = t.back.find(decode_cp(spelled, pos, n));
    if (it == t.back.end()) return std::nullopt;
    out += static_cast<char>(it->second);
    pos += n;
  }
  return out;
}

}  // namespace imp
