// Chat-template parser — Jinja2 statements and expressions into the AST of
// chat_template_ast.h. Supported: {{ }}, {% if/elif/else/endif %}, {% for a[, b] in x
// [if c] %}…{% else %}…{% endfor %}, {% set name = x %}, comments; expressions with
// literals (string, int, float, true/false/none), lists, dicts, tuples-as-lists,
// attribute/subscript/slice access, calls, filters, `is [not]` tests, conditional
// expressions, and the operators or and not in `not in` == != < > <= >= ~ + - * / // % **.
// Anything else (macro, call, raw, block, set-blocks, namespace attribute assignment…)
// is an imp::Error naming the construct and its line and column.
#pragma once

#include <string>

#include "runtime/chat_template_ast.h"

namespace imp::jinja {

// src must be normalize_source()'d; positions in the tree index into it.
NodeList parse_template(const std::string& src);

}  // namespace imp::jinja
