// UTF-8 helpers for the tokenizers: code-point length of a lead byte and code-point
// encoding. Invalid input never reads out of bounds: a bad lead byte or a truncated
// sequence counts as one byte (the tokenizers then fall back to byte tokens).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace imp {

// Length in bytes of the UTF-8 sequence starting at s[pos] (1..4), clipped to the
// bytes that remain; 1 for a stray continuation byte or an invalid lead byte.
size_t utf8_char_len(std::string_view s, size_t pos);

// Appends code point cp (< 0x110000) as UTF-8.
void utf8_append(std::string& out, uint32_t cp);

}  // namespace imp
