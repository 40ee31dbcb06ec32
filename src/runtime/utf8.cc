#include "runtime/utf8.h"

namespace imp {

size_t utf8_char_len(std::string_view s, size_t pos) {
  const auto lead = static_cast<uint8_t>(s[pos]);
  size_t n = 1;
  if (lead >= 0xF0 && lead < 0xF8) n = 4;
  else if (lead >= 0xE0) n = lead < 0xF0 ? 3 : 1;
  else if (lead >= 0xC0) n = 2;
  if (n == 1) return 1;
  if (pos + n > s.size()) return 1;
  for (size_t k = 1; k < n; ++k) {
    if ((static_cast<uint8_t>(s[pos + k]) & 0xC0) != 0x80) return 1;
  }
  return n;
}

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace imp
