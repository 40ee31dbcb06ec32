// Python semantics for chat-template values (JSON values; discarded = Undefined):
// truthiness, str() / repr() spelling, json.dumps as transformers' tojson filter calls it
// (ensure_ascii=False; separators ", " and ": ", or "," and ": " with an indent), and
// equality with Python's int/float/bool mixing.
#pragma once

#include <optional>
#include <string>

#include "runtime/chat_template_ast.h"

namespace imp::jinja {

inline bool is_undefined(const Value& v) { return v.is_discarded(); }
inline Value undefined() { return Value(Value::value_t::discarded); }

bool truthy(const Value& v);
std::string py_str(const Value& v);   // what {{ v }} prints
std::string py_repr(const Value& v);
std::string type_name(const Value& v);
// json.dumps(v, ensure_ascii=False, indent=indent, sort_keys=sort_keys).
std::string to_json(const Value& v, std::optional<int> indent, bool sort_keys);
bool py_equal(const Value& a, const Value& b);

}  // namespace imp::jinja
