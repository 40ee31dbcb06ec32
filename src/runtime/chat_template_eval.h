// Chat-template evaluator — renders a parsed template against a context of JSON values.
// Scopes follow jinja2: a `for` body gets its own scope (its `set`s do not leak out),
// `if` bodies do not. Undefined names are Jinja's default Undefined (empty when printed,
// false, iterable as empty; attribute access on it is an error). Filters: trim, length,
// count, tojson(indent), upper, lower, title, capitalize, default/d, join, first, last,
// list, items, string, int, float, abs, reject/select(test), map(attribute=). Tests:
// defined, undefined, none, string, number, integer, float, boolean, mapping, iterable,
// sequence, true, false, even, odd, equalto/eq/==, ne, in. Globals: raise_exception, range.
// String methods: strip/lstrip/rstrip, split, startswith/endswith, upper/lower, replace;
// dict methods: items, keys, values, get.
#pragma once

#include <string>

#include "runtime/chat_template_ast.h"

namespace imp::jinja {

// Throws imp::Error for unsupported constructs (naming them and their position), type
// errors, and raise_exception() calls (with the template's message).
std::string render(const std::string& src, const NodeList& nodes, const Value& context);

}  // namespace imp::jinja
