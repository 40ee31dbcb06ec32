#include "runtime/chat_template_lexer.h"

#include <fmt/format.h>

#include <cctype>

#include "common/error.h"
#include "runtime/utf8.h"

namespace imp::jinja {

std::string normalize_source(std::string_view src) {
  std::string out;
  out.reserve(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    if (src[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < src.size() && src[i + 1] == '\n') ++i;
    } else {
      out.push_back(src[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string describe_pos(const std::string& src, size_t pos) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < pos && i < src.size(); ++i) {
    if (src[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return fmt::format("line {}, column {}", line, col);
}

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// lstrip_blocks: drop spaces/tabs that sit between a line start and the tag.
void lstrip_line(std::vector<Segment>& segs, bool at_source_start) {
  if (segs.empty() || segs.back().kind != SegKind::kText) return;
  std::string& t = segs.back().text;
  size_t i = t.size();
  while (i > 0 && (t[i - 1] == ' ' || t[i - 1] == '\t')) --i;
  if (i > 0 ? t[i - 1] == '\n' : at_source_start) t.resize(i);
}

}  // namespace

std::vector<Segment> split_segments(const std::string& src) {
  std::vector<Segment> segs;
  bool strip_next_all = false, strip_next_newline = false;
  size_t i = 0;
  while (i <= src.size()) {
    size_t open = src.find('{', i);
    while (open != std::string::npos && open + 1 < src.size() && src[open + 1] != '{' && src[open + 1] != '%' &&
           src[open + 1] != '#') {
      open = src.find('{', open + 1);
    }
    if (open != std::string::npos && open + 1 >= src.size()) open = std::string::npos;
    std::string text = src.substr(i, open == std::string::npos ? std::string::npos : open - i);
    if (strip_next_all) {
      size_t k = 0;
      while (k < text.size() && is_space(text[k])) ++k;
      text.erase(0, k);
    } else if (strip_next_newline && !text.empty() && text[0] == '\n') {
      text.erase(0, 1);
    }
    const bool text_at_start = segs.empty();
    if (!text.empty() || text_at_start) segs.push_back({SegKind::kText, text, i, i});
    if (open == std::string::npos) break;

    const char kind = src[open + 1];
    const std::string close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
    size_t j = open + 2;
    const char modifier = j < src.size() ? src[j] : '\0';
    if (modifier == '-' || modifier == '+') ++j;
    size_t end = src.find(close, j);
    if (end == std::string::npos) {
      fail("chat template: unclosed '{}' tag at {}", src.substr(open, 2), describe_pos(src, open));
    }
    bool strip_after = false, keep_newline = false;
    size_t inner_end = end;
    if (inner_end > j && src[inner_end - 1] == '-') {
      strip_after = true;
      --inner_end;
    } else if (inner_end > j && src[inner_end - 1] == '+') {
      keep_newline = true;
      --inner_end;
    }
    const bool block = kind != '{';
    // Whitespace before the tag.
    if (modifier == '-') {
      if (!segs.empty() && segs.back().kind == SegKind::kText) {
        std::string& t = segs.back().text;
        while (!t.empty() && is_space(t.back())) t.pop_back();
      }
    } else if (block && modifier != '+') {
      lstrip_line(segs, text_at_start && segs.size() == 1);
    }
    if (kind != '#') {
      segs.push_back({kind == '{' ? SegKind::kExpr : SegKind::kStmt, src.substr(j, inner_end - j), open, j});
    }
    strip_next_all = strip_after;
    strip_next_newline = block && !keep_newline;
    i = end + 2;
  }
  // Drop empty text segments (the start placeholder among them).
  std::erase_if(segs, [](const Segment& s) { return s.kind == SegKind::kText && s.text.empty(); });
  return segs;
}

namespace {

// Python string-literal escapes, which jinja2 applies to its string literals.
std::string read_string(const std::string& src, const std::string& s, size_t& k, size_t base) {
  const char quote = s[k];
  const size_t start = k++;
  std::string out;
  while (k < s.size() && s[k] != quote) {
    char c = s[k++];
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (k >= s.size()) break;
    c = s[k++];
    switch (c) {
      case 'n': out.push_back('\n'); break;
      case 't': out.push_back('\t'); break;
      case 'r': out.push_back('\r'); break;
      case '0': out.push_back('\0'); break;
      case '\\': out.push_back('\\'); break;
      case '\'': out.push_back('\''); break;
      case '"': out.push_back('"'); break;
      case '\n': break;
      case 'u':
      case 'x': {
        const size_t n = c == 'u' ? 4 : 2;
        if (k + n > s.size()) fail("chat template: bad \\{} escape at {}", c, describe_pos(src, base + k));
        uint32_t cp = 0;
        for (size_t d = 0; d < n; ++d) {
          const char h = s[k + d];
          const int v = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
          if (v < 0) fail("chat template: bad \\{} escape at {}", c, describe_pos(src, base + k));
          cp = cp * 16 + uint32_t(v);
        }
        k += n;
        utf8_append(out, cp);
        break;
      }
      default:  // Python keeps unknown escapes verbatim
        out.push_back('\\');
        out.push_back(c);
    }
  }
  if (k >= s.size()) fail("chat template: unterminated string literal at {}", describe_pos(src, base + start));
  ++k;
  return out;
}

}  // namespace

std::vector<Token> tokenize_tag(const std::string& src, const std::string& s, size_t base) {
  static const char* const kOps[] = {"**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">",
                                     "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", "="};
  std::vector<Token> toks;
  size_t k = 0;
  while (k < s.size()) {
    const char c = s[k];
    if (is_space(c)) {
      ++k;
      continue;
    }
    const size_t p = base + k;
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t e = k;
      while (e < s.size() && (std::isalnum(static_cast<unsigned char>(s[e])) || s[e] == '_')) ++e;
      toks.push_back({TokKind::kName, s.substr(k, e - k), 0, 0.0, p});
      k = e;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t e = k;
      while (e < s.size() && (std::isdigit(static_cast<unsigned char>(s[e])) || s[e] == '_')) ++e;
      bool is_float = false;
      if (e + 1 < s.size() && s[e] == '.' && std::isdigit(static_cast<unsigned char>(s[e + 1]))) {
        is_float = true;
        ++e;
        while (e < s.size() && std::isdigit(static_cast<unsigned char>(s[e]))) ++e;
      }
      if (e < s.size() && (s[e] == 'e' || s[e] == 'E')) {
        size_t x = e + 1;
        if (x < s.size() && (s[x] == '+' || s[x] == '-')) ++x;
        if (x < s.size() && std::isdigit(static_cast<unsigned char>(s[x]))) {
          is_float = true;
          e = x;
          while (e < s.size() && std::isdigit(static_cast<unsigned char>(s[e]))) ++e;
        }
      }
      std::string digits;
      for (size_t d = k; d < e; ++d)
        if (s[d] != '_') digits.push_back(s[d]);
      Token t{is_float ? TokKind::kFloat : TokKind::kInt, digits, 0, 0.0, p};
      try {
        if (is_float) t.f = std::stod(digits); else t.i = std::stoll(digits);
      } catch (const std::exception&) {
        fail("chat template: number '{}' out of range at {}", digits, describe_pos(src, p));
      }
      toks.push_back(t);
      k = e;
    } else if (c == '\'' || c == '"') {
      toks.push_back({TokKind::kString, read_string(src, s, k, base), 0, 0.0, p});
    } else {
      bool found = false;
      for (const char* op : kOps) {
        const std::string_view o(op);
        if (s.compare(k, o.size(), o) == 0) {
          toks.push_back({TokKind::kOp, std::string(o), 0, 0.0, p});
          k += o.size();
          found = true;
          break;
        }
      }
      if (!found) fail("chat template: unexpected character '{}' at {}", c, describe_pos(src, p));
    }
  }
  toks.push_back({TokKind::kEnd, "", 0, 0.0, base + s.size()});
  return toks;
}

}  // namespace imp::jinja
