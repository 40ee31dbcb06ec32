// Chat-template AST — the tree chat_template_parser builds from a Jinja2 template and
// chat_template_eval walks. Every node keeps `pos`, the byte offset of its construct in
// the template source, so evaluation errors can name where they happened.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace imp::jinja {

// Values are JSON values; value_t::discarded stands for Jinja's `Undefined`.
using Value = nlohmann::ordered_json;

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprKind {
  kLiteral,    // value
  kName,       // name
  kList,       // items
  kDict,       // items as key, value pairs
  kGetAttr,    // a.name
  kGetItem,    // a[b]
  kSlice,      // a[b:c:d]; absent parts are null pointers
  kCall,       // a(args, kw=...)
  kFilter,     // a | name(args)
  kTest,       // a is [not] name(args)   (negated = "not")
  kUnary,      // op a  ("not", "-", "+")
  kBinary,     // a op b
  kCond,       // b if a else c  (a = condition, b = then, c = else; c may be null)
};

struct Expr {
  ExprKind kind;
  size_t pos = 0;
  Value value;          // kLiteral
  std::string name;     // kName, kGetAttr, kFilter, kTest; operator of kUnary / kBinary
  bool negated = false; // kTest with `is not`
  ExprPtr a, b, c;
  std::vector<ExprPtr> args;                          // kList, kCall, kFilter, kTest; kDict: k0,v0,k1,v1…
  std::vector<std::pair<std::string, ExprPtr>> kwargs;  // kCall, kFilter
};

struct Node;
using NodeList = std::vector<std::unique_ptr<Node>>;

enum class NodeKind {
  kText,    // text
  kOutput,  // {{ expr }}
  kIf,      // branches: (condition, body)…, else_body
  kFor,     // for targets in expr [if filter]: body [else else_body]
  kSet,     // set target = expr
};

struct Node {
  NodeKind kind;
  size_t pos = 0;
  std::string text;
  ExprPtr expr;                                   // kOutput, kFor (iterable), kSet (value)
  std::vector<std::pair<ExprPtr, NodeList>> branches;  // kIf
  NodeList body, else_body;                       // kFor, kIf (else_body)
  std::vector<std::string> targets;               // kFor loop variables, kSet name
  ExprPtr filter;                                 // kFor `if` clause
};

}  // namespace imp::jinja
