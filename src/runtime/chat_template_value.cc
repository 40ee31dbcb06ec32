#include "runtime/chat_template_value.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace imp::jinja {

bool truthy(const Value& v) {
  switch (v.type()) {
    case Value::value_t::null:
    case Value::value_t::discarded: return false;
    case Value::value_t::boolean: return v.get<bool>();
    case Value::value_t::number_integer:
    case Value::value_t::number_unsigned: return v.get<long long>() != 0;
    case Value::value_t::number_float: return v.get<double>() != 0.0;
    case Value::value_t::string: return !v.get_ref<const std::string&>().empty();
    case Value::value_t::array:
    case Value::value_t::object: return !v.empty();
    default: return true;
  }
}

namespace {

// Python float repr: shortest round-trip digits, exponent form outside [1e-4, 1e16).
std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, r.ptr);
  const size_t e = sci.find('e');
  const int exp = std::stoi(sci.substr(e + 1));
  std::string mant = sci.substr(0, e);
  if (exp < -4 || exp >= 16) {
    if (mant.find('.') == std::string::npos) mant += "";
    return fmt::format("{}e{}{:02d}", mant, exp < 0 ? '-' : '+', std::abs(exp));
  }
  r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::fixed);
  std::string s(buf, r.ptr);
  if (s.find('.') == std::string::npos) s += ".0";
  return s;
}

std::string quote_py(const std::string& s) {
  // Python prefers single quotes unless the text has a ' and no ".
  const bool dq = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  const char q = dq ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == q) out += std::string("\\") + char(q);
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7F) out += fmt::format("\\x{:02x}", c);
    else out.push_back(char(c));
  }
  out.push_back(q);
  return out;
}

void json_string(std::string& out, const std::string& s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) out += fmt::format("\\u{:04x}", c);
        else out.push_back(char(c));
    }
  }
  out.push_back('"');
}

void dump(std::string& out, const Value& v, std::optional<int> indent, bool sort_keys, int depth) {
  const auto newline = [&](int d) {
    out.push_back('\n');
    out.append(size_t(*indent) * size_t(d), ' ');
  };
  const char* item_sep = indent ? "," : ", ";
  switch (v.type()) {
    case Value::value_t::array: {
      if (v.empty()) {
        out += "[]";
        return;
      }
      out.push_back('[');
      for (size_t i = 0; i < v.size(); ++i) {
        if (i) out += item_sep;
        if (indent) newline(depth + 1);
        dump(out, v[i], indent, sort_keys, depth + 1);
      }
      if (indent) newline(depth);
      out.push_back(']');
      return;
    }
    case Value::value_t::object: {
      if (v.empty()) {
        out += "{}";
        return;
      }
      std::vector<std::string> keys;
      for (auto it = v.begin(); it != v.end(); ++it) keys.push_back(it.key());
      if (sort_keys) std::sort(keys.begin(), keys.end());
      out.push_back('{');
      for (size_t i = 0; i < keys.size(); ++i) {
        if (i) out += item_sep;
        if (indent) newline(depth + 1);
        json_string(out, keys[i]);
        out += ": ";
        dump(out, v.at(keys[i]), indent, sort_keys, depth + 1);
      }
      if (indent) newline(depth);
      out.push_back('}');
      return;
    }
    case Value::value_t::string: json_string(out, v.get_ref<const std::string&>()); return;
    case Value::value_t::number_float: {
      const double d = v.get<double>();
      out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d > 0 ? "Infinity" : "-Infinity") : float_repr(d);
      return;
    }
    case Value::value_t::discarded: out += "null"; return;
    default: out += v.dump(); return;  // null, bool, integers spell the same
  }
}

}  // namespace

std::string py_repr(const Value& v) {
  switch (v.type()) {
    case Value::value_t::string: return quote_py(v.get_ref<const std::string&>());
    case Value::value_t::array: {
      std::string s = "[";
      for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + py_repr(v[i]);
      return s + "]";
    }
    case Value::value_t::object: {
      std::string s = "{";
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        s += (first ? "" : ", ") + quote_py(it.key()) + ": " + py_repr(it.value());
        first = false;
      }
      return s + "}";
    }
    default: return py_str(v);
  }
}

std::string py_str(const Value& v) {
  switch (v.type()) {
    case Value::value_t::discarded: return "";
    case Value::value_t::null: return "None";
    case Value::value_t::boolean: return v.get<bool>() ? "True" : "False";
    case Value::value_t::number_float: return float_repr(v.get<double>());
    case Value::value_t::string: return v.get<std::string>();
    case Value::value_t::array:
    case Value::value_t::object: return py_repr(v);
    default: return v.dump();
  }
}

std::string type_name(const Value& v) {
  switch (v.type()) {
    case Value::value_t::discarded: return "undefined";
    case Value::value_t::null: return "none";
    case Value::value_t::boolean: return "bool";
    case Value::value_t::number_float: return "float";
    case Value::value_t::number_integer:
    case Value::value_t::number_unsigned: return "int";
    case Value::value_t::string: return "string";
    case Value::value_t::array: return "list";
    case Value::value_t::object: return "dict";
    default: return "value";
  }
}

std::string to_json(const Value& v, std::optional<int> indent, bool sort_keys) {
  std::string out;
  dump(out, v, indent, sort_keys, 0);
  return out;
}

bool py_equal(const Value& a, const Value& b) {
  const auto numeric = [](const Value& v) { return v.is_number() || v.is_boolean(); };
  if (numeric(a) && numeric(b)) {
    const auto as_d = [](const Value& v) { return v.is_boolean() ? double(v.get<bool>()) : v.get<double>(); };
    if (a.is_number_integer() && b.is_number_integer()) return a.get<long long>() == b.get<long long>();
    return as_d(a) == as_d(b);
  }
  if (a.is_discarded() || b.is_discarded()) return a.is_discarded() && b.is_discarded();
  if (a.type() != b.type()) return false;
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (!py_equal(a[i], b[i])) return false;
    return true;
  }
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto it = a.begin(); it != a.end(); ++it) {
      auto jt = b.find(it.key());
      if (jt == b.end() || !py_equal(it.value(), *jt)) return false;
    }
    return true;
  }
  return a == b;
}

}  // namespace imp::jinja
