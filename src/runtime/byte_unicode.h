// GPT-2 byte-level alphabet: every byte 0..255 is spelled as one printable Unicode
// character so that BPE vocabularies can be stored as text.
//   Bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF map to the code point of the same value;
//   the 68 others (controls, space, DEL, 0x80..0xA0, 0xAD) map, in increasing byte order,
//   to U+0100, U+0101, … (so ' ' → 'Ġ' U+0120, '\n' → 'Ċ' U+010A).
// Source: OpenAI GPT-2 encoder.py bytes_to_unicode(), as used by Hugging Face ByteLevel.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace imp {

// UTF-8 spelling of one byte (1 or 2 bytes long).
const std::string& byte_to_unicode(uint8_t b);
// Appends the spelling of every byte of `bytes` to `out`.
void bytes_to_unicode(std::string_view bytes, std::string& out);
// Inverse mapping of a whole spelled string; nullopt when a character is outside the
// 256-character alphabet (e.g. an added token such as "<|im_start|>" containing none is fine,
// but "é" spelled directly is not part of it).
std::optional<std::string> unicode_to_bytes(std::string_view spelled);

}  // namespace imp
