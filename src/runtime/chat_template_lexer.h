// Chat-template lexer — splits a Jinja2 template into text and tags, applies whitespace
// control the way jinja2 does with trim_blocks=True, lstrip_blocks=True (the settings
// transformers' apply_chat_template uses), and tokenizes tag contents.
//
// Whitespace rules (jinja2 docs, "Whitespace Control"):
//   - newlines are normalized to "\n" and one trailing newline of the source is dropped
//     (keep_trailing_newline=False);
//   - `{%-`, `{{-`, `{#-` strip all whitespace before the tag; `-%}`, `-}}`, `-#}` after it;
//   - lstrip_blocks: spaces/tabs between a line start and `{%` / `{#` are removed
//     (not for `{%+`);
//   - trim_blocks: the first newline after `%}` / `#}` is removed (not for `+%}`).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace imp::jinja {

enum class SegKind { kText, kExpr, kStmt };  // comments are dropped by the lexer

struct Segment {
  SegKind kind;
  std::string text;  // kText: literal output; kExpr/kStmt: the tag's inner source
  size_t pos = 0;    // byte offset in the normalized source (of the tag's "{")
  size_t inner = 0;  // offset of `text` in the normalized source
};

enum class TokKind { kName, kString, kInt, kFloat, kOp, kEnd };

struct Token {
  TokKind kind;
  std::string text;  // name, operator, or decoded string
  long long i = 0;
  double f = 0.0;
  size_t pos = 0;    // byte offset in the normalized source
};

// Newline-normalized source with jinja2's trailing-newline rule applied.
std::string normalize_source(std::string_view src);
// Segments of a normalized source. Throws imp::Error on an unclosed tag or comment.
std::vector<Segment> split_segments(const std::string& src);
// Tokens of one tag's inner text; `base` is the offset of `inner` in the source.
std::vector<Token> tokenize_tag(const std::string& src, const std::string& inner, size_t base);
// "line L, column C" of a byte offset.
std::string describe_pos(const std::string& src, size_t pos);

}  // namespace imp::jinja
