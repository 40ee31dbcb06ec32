#include "runtime/chat_template_eval.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>

#include "common/error.h"
#include "runtime/chat_template_lexer.h"
#include "runtime/chat_template_value.h"

namespace imp::jinja {
namespace {

std::string strip_chars(const std::string& s, const std::string& chars, bool left, bool right) {
  size_t b = 0, e = s.size();
  if (left) b = s.find_first_not_of(chars);
  if (b == std::string::npos) return "";
  if (right) e = s.find_last_not_of(chars) + 1;
  return s.substr(b, e - b);
}
const std::string kWs = " \t\n\r\f\v";

class Renderer {
 public:
  Renderer(const std::string& src, const Value& ctx) : src_(src) { scopes_.push_back(ctx.is_object() ? ctx : Value::object()); }

  void run(const NodeList& nodes) {
    for (const auto& n : nodes) node(*n);
  }
  std::string out;

 private:
  [[noreturn]] void error(size_t pos, const std::string& what) const {
    fail("chat template: {} at {}", what, describe_pos(src_, pos));
  }

  Value lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto f = it->find(name);
      if (f != it->end()) return *f;
    }
    return undefined();
  }

  void node(const Node& n) {
    switch (n.kind) {
      case NodeKind::kText: out += n.text; return;
      case NodeKind::kOutput: out += py_str(eval(*n.expr)); return;
      case NodeKind::kSet: scopes_.back()[n.targets[0]] = eval(*n.expr); return;
      case NodeKind::kIf:
        for (const auto& [cond, body] : n.branches) {
          if (truthy(eval(*cond))) {
            run(body);
            return;
          }
        }
        run(n.else_body);
        return;
      case NodeKind::kFor: for_loop(n); return;
    }
  }

  void for_loop(const Node& n) {
    const Value seq = eval(*n.expr);
    std::vector<Value> items;
    if (seq.is_array()) {
      items.assign(seq.begin(), seq.end());
    } else if (seq.is_object()) {
      for (auto it = seq.begin(); it != seq.end(); ++it) items.emplace_back(it.key());
    } else if (seq.is_string()) {
      fail("chat template: iterating over a string is not supported at {}", describe_pos(src_, n.expr->pos));
    } else if (!is_undefined(seq)) {
      error(n.expr->pos, "'" + type_name(seq) + "' is not iterable");
    }
    if (n.filter) {
      std::vector<Value> kept;
      for (const auto& it : items) {
        scopes_.push_back(Value::object());
        bind(n, it);
        if (truthy(eval(*n.filter))) kept.push_back(it);
        scopes_.pop_back();
      }
      items = std::move(kept);
    }
    if (items.empty()) {
      run(n.else_body);
      return;
    }
    const long long len = (long long)items.size();
    for (long long i = 0; i < len; ++i) {
      scopes_.push_back(Value::object());
      bind(n, items[size_t(i)]);
      Value loop = Value::object();
      loop["index"] = i + 1;
      loop["index0"] = i;
      loop["revindex"] = len - i;
      loop["revindex0"] = len - i - 1;
      loop["first"] = i == 0;
      loop["last"] = i + 1 == len;
      loop["length"] = len;
      loop["previtem"] = i > 0 ? items[size_t(i - 1)] : undefined();
      loop["nextitem"] = i + 1 < len ? items[size_t(i + 1)] : undefined();
      scopes_.back()["loop"] = std::move(loop);
      run(n.body);
      scopes_.pop_back();
    }
  }

  void bind(const Node& n, const Value& item) {
    if (n.targets.size() == 1) {
      scopes_.back()[n.targets[0]] = item;
      return;
    }
    if (!item.is_array() || item.size() != n.targets.size()) {
      error(n.pos, fmt::format("cannot unpack {} into {} loop variables", py_repr(item), n.targets.size()));
    }
    for (size_t k = 0; k < n.targets.size(); ++k) scopes_.back()[n.targets[k]] = item[k];
  }

  Value eval(const Expr& e) {
    switch (e.kind) {
      case ExprKind::kLiteral: return e.value;
      case ExprKind::kName: return lookup(e.name);
      case ExprKind::kList: {
        Value l = Value::array();
        for (const auto& a : e.args) l.push_back(eval(*a));
        return l;
      }
      case ExprKind::kDict: {
        Value d = Value::object();
        for (size_t k = 0; k + 1 < e.args.size(); k += 2) {
          const Value key = eval(*e.args[k]);
          if (!key.is_string()) error(e.args[k]->pos, "dict keys must be strings");
          d[key.get<std::string>()] = eval(*e.args[k + 1]);
        }
        return d;
      }
      case ExprKind::kGetAttr: return get_attr(eval(*e.a), e.name, e.pos);
      case ExprKind::kGetItem: return get_item(eval(*e.a), eval(*e.b), e.pos);
      case ExprKind::kSlice: return slice(e);
      case ExprKind::kCall: return call(e);
      case ExprKind::kFilter: return filter(e);
      case ExprKind::kTest: return test(e);
      case ExprKind::kUnary: {
        const Value v = eval(*e.a);
        if (e.name == "not") return !truthy(v);
        if (v.is_number_integer()) return e.name == "-" ? -v.get<long long>() : v.get<long long>();
        if (v.is_number()) return e.name == "-" ? -v.get<double>() : v.get<double>();
        error(e.pos, "unary '" + e.name + "' needs a number, got " + type_name(v));
      }
      case ExprKind::kBinary: return binary(e);
      case ExprKind::kCond: return truthy(eval(*e.a)) ? eval(*e.b) : e.c ? eval(*e.c) : undefined();
    }
    error(e.pos, "unsupported expression");
  }

  Value get_attr(const Value& v, const std::string& name, size_t pos) {
    if (is_undefined(v)) error(pos, "attribute '" + name + "' of an undefined value");
    if (v.is_object()) {
      auto f = v.find(name);
      return f == v.end() ? undefined() : *f;
    }
    return undefined();
  }

  Value get_item(const Value& v, const Value& key, size_t pos) {
    if (is_undefined(v)) error(pos, "subscript of an undefined value");
    if (v.is_object() && key.is_string()) {
      auto f = v.find(key.get<std::string>());
      return f == v.end() ? undefined() : *f;
    }
    if ((v.is_array() || v.is_string()) && key.is_number_integer()) {
      const long long n = v.is_array() ? (long long)v.size() : (long long)v.get_ref<const std::string&>().size();
      long long i = key.get<long long>();
      if (i < 0) i += n;
      if (i < 0 || i >= n) return undefined();
      if (v.is_array()) return v[size_t(i)];
      return std::string(1, v.get_ref<const std::string&>()[size_t(i)]);
    }
    return undefined();
  }

  Value slice(const Expr& e) {
    const Value v = eval(*e.a);
    const auto opt = [&](const ExprPtr& p) -> std::optional<long long> {
      if (!p) return std::nullopt;
      const Value x = eval(*p);
      if (x.is_null()) return std::nullopt;
      if (!x.is_number_integer()) error(p->pos, "slice bounds must be integers");
      return x.get<long long>();
    };
    const auto start = opt(e.b), stop = opt(e.args[0]), step_o = opt(e.args[1]);
    const long long step = step_o.value_or(1);
    if (step == 0) error(e.pos, "slice step cannot be zero");
    if (!v.is_array() && !v.is_string()) error(e.pos, "cannot slice a " + type_name(v));
    const long long n = v.is_array() ? (long long)v.size() : (long long)v.get_ref<const std::string&>().size();
    const auto clamp = [&](std::optional<long long> x, long long dflt) {
      if (!x) return dflt;
      long long i = *x < 0 ? *x + n : *x;
      return step > 0 ? std::clamp(i, 0LL, n) : std::clamp(i, -1LL, n - 1);
    };
    const long long b = clamp(start, step > 0 ? 0 : n - 1), en = clamp(stop, step > 0 ? n : -1);
    Value out = v.is_array() ? Value::array() : Value("");
    for (long long i = b; step > 0 ? i < en : i > en; i += step) {
      if (v.is_array()) out.push_back(v[size_t(i)]);
      else out.get_ref<std::string&>().push_back(v.get_ref<const std::string&>()[size_t(i)]);
    }
    return out;
  }

  std::vector<Value> args_of(const Expr& e) {
    std::vector<Value> a;
    for (const auto& x : e.args) a.push_back(eval(*x));
    return a;
  }
  Value kwarg(const Expr& e, const std::string& name) {
    for (const auto& [k, v] : e.kwargs)
      if (k == name) return eval(*v);
    return undefined();
  }

  Value call(const Expr& e);
  Value filter(const Expr& e);
  Value test(const Expr& e);
  bool run_test(const std::string& name, const Value& v, const std::vector<Value>& args, size_t pos);
  Value binary(const Expr& e);
  bool contains(const Value& hay, const Value& needle, size_t pos);

  const std::string& src_;
  std::vector<Value> scopes_;
};

Value Renderer::call(const Expr& e) {
  const std::vector<Value> a = args_of(e);
  if (e.a->kind == ExprKind::kName && is_undefined(lookup(e.a->name))) {
    const std::string& fn = e.a->name;
    if (fn == "raise_exception") {
      fail("chat template raised an exception: {}", a.empty() ? std::string() : py_str(a[0]));
    }
    if (fn == "range") {
      if (a.empty() || a.size() > 3) error(e.pos, "range() takes 1 to 3 arguments");
      for (const auto& x : a)
        if (!x.is_number_integer()) error(e.pos, "range() arguments must be integers");
      long long b = 0, en = 0, st = 1;
      if (a.size() == 1) en = a[0].get<long long>();
      else b = a[0].get<long long>(), en = a[1].get<long long>();
      if (a.size() == 3) st = a[2].get<long long>();
      if (st == 0) error(e.pos, "range() step cannot be zero");
      Value l = Value::array();
      for (long long i = b; st > 0 ? i < en : i > en; i += st) {
        if (l.size() > 1000000) error(e.pos, "range() too long");
        l.push_back(i);
      }
      return l;
    }
    error(e.pos, "unsupported function '" + fn + "'");
  }
  if (e.a->kind != ExprKind::kGetAttr) error(e.pos, "unsupported call");
  const Value self = eval(*e.a->a);
  const std::string& m = e.a->name;
  const auto str_arg = [&](size_t i) {
    if (i >= a.size() || !a[i].is_string()) error(e.pos, "'" + m + "' needs a string argument");
    return a[i].get<std::string>();
  };
  if (self.is_string()) {
    const std::string& s = self.get_ref<const std::string&>();
    if (m == "strip" || m == "lstrip" || m == "rstrip") {
      const std::string chars = a.empty() || a[0].is_null() ? kWs : str_arg(0);
      return strip_chars(s, chars, m != "rstrip", m != "lstrip");
    }
    if (m == "upper" || m == "lower") {
      std::string r = s;
      for (auto& c : r) c = char(m == "upper" ? std::toupper((unsigned char)c) : std::tolower((unsigned char)c));
      return r;
    }
    if (m == "startswith") return s.starts_with(str_arg(0));
    if (m == "endswith") return s.ends_with(str_arg(0));
    if (m == "replace") {
      const std::string from = str_arg(0), to = str_arg(1);
      if (from.empty()) error(e.pos, "replace() with an empty pattern is not supported");
      std::string r;
      size_t p = 0, q;
      while ((q = s.find(from, p)) != std::string::npos) {
        r += s.substr(p, q - p) + to;
        p = q + from.size();
      }
      return r + s.substr(p);
    }
    if (m == "split") {
      Value l = Value::array();
      if (a.empty() || a[0].is_null()) {
        size_t p = 0;
        while (true) {
          p = s.find_first_not_of(kWs, p);
          if (p == std::string::npos) break;
          const size_t q = s.find_first_of(kWs, p);
          l.push_back(s.substr(p, q == std::string::npos ? std::string::npos : q - p));
          if (q == std::string::npos) break;
          p = q;
        }
        return l;
      }
      const std::string sep = str_arg(0);
      if (sep.empty()) error(e.pos, "split() with an empty separator");
      size_t p = 0, q;
      while ((q = s.find(sep, p)) != std::string::npos) {
        l.push_back(s.substr(p, q - p));
        p = q + sep.size();
      }
      l.push_back(s.substr(p));
      return l;
    }
  }
  if (self.is_object()) {
    if (m == "items") {
      Value l = Value::array();
      for (auto it = self.begin(); it != self.end(); ++it) l.push_back(Value::array({it.key(), it.value()}));
      return l;
    }
    if (m == "keys" || m == "values") {
      Value l = Value::array();
      for (auto it = self.begin(); it != self.end(); ++it) l.push_back(m == "keys" ? Value(it.key()) : it.value());
      return l;
    }
    if (m == "get") {
      auto f = self.find(str_arg(0));
      return f != self.end() ? *f : a.size() > 1 ? a[1] : Value(nullptr);
    }
  }
  error(e.pos, "unsupported method '" + m + "' on a " + type_name(self));
}

bool Renderer::run_test(const std::string& name, const Value& v, const std::vector<Value>& args, size_t pos) {
  if (name == "defined") return !is_undefined(v);
  if (name == "undefined") return is_undefined(v);
  if (name == "none") return v.is_null();
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.is_number_integer();
  if (name == "float") return v.is_number_float();
  if (name == "boolean") return v.is_boolean();
  if (name == "true") return v.is_boolean() && v.get<bool>();
  if (name == "false") return v.is_boolean() && !v.get<bool>();
  if (name == "mapping") return v.is_object();
  if (name == "iterable") return v.is_array() || v.is_object() || v.is_string();
  if (name == "sequence") return v.is_array() || v.is_object() || v.is_string();
  if (name == "even" || name == "odd") {
    if (!v.is_number_integer()) error(pos, "test '" + name + "' needs an integer");
    return (v.get<long long>() % 2 == 0) == (name == "even");
  }
  if (name == "equalto" || name == "eq" || name == "==" || name == "ne" || name == "!=") {
    if (args.size() != 1) error(pos, "test '" + name + "' takes one argument");
    return py_equal(v, args[0]) == (name != "ne" && name != "!=");
  }
  if (name == "in") {
    if (args.size() != 1) error(pos, "test 'in' takes one argument");
    return contains(args[0], v, pos);
  }
  error(pos, "unsupported test '" + name + "'");
}

Value Renderer::test(const Expr& e) {
  const Value v = eval(*e.a);
  return run_test(e.name, v, args_of(e), e.pos) != e.negated;
}

Value Renderer::filter(const Expr& e) {
  const Value v = eval(*e.a);
  const std::vector<Value> a = args_of(e);
  const std::string& f = e.name;
  const auto need_str = [&]() -> std::string {
    if (is_undefined(v)) return "";
    return py_str(v);
  };
  if (f == "trim") return strip_chars(need_str(), kWs, true, true);
  if (f == "upper" || f == "lower") {
    std::string r = need_str();
    for (auto& c : r) c = char(f == "upper" ? std::toupper((unsigned char)c) : std::tolower((unsigned char)c));
    return r;
  }
  if (f == "string") return need_str();
  if (f == "length" || f == "count") {
    if (v.is_string()) {  // characters, not bytes
      long long n = 0;
      for (unsigned char c : v.get_ref<const std::string&>()) n += (c & 0xC0) != 0x80;
      return n;
    }
    if (v.is_array() || v.is_object()) return (long long)v.size();
    if (is_undefined(v)) return 0LL;
    error(e.pos, "object of type " + type_name(v) + " has no length");
  }
  if (f == "tojson") {
    std::optional<int> indent;
    Value iv = kwarg(e, "indent");
    if (is_undefined(iv) && !a.empty()) iv = a[0];
    if (iv.is_number_integer()) indent = int(iv.get<long long>());
    else if (!is_undefined(iv) && !iv.is_null()) error(e.pos, "tojson indent must be an integer");
    const Value sk = kwarg(e, "sort_keys");
    return to_json(v, indent, truthy(sk));
  }
  if (f == "default" || f == "d") {
    const bool boolean = (a.size() > 1 && truthy(a[1])) || truthy(kwarg(e, "boolean"));
    const Value dflt = a.empty() ? Value("") : a[0];
    return (is_undefined(v) || (boolean && !truthy(v))) ? dflt : v;
  }
  if (f == "join") {
    const std::string sep = a.empty() ? "" : py_str(a[0]);
    if (!v.is_array()) error(e.pos, "join needs a list, got " + type_name(v));
    std::string r;
    for (size_t i = 0; i < v.size(); ++i) r += (i ? sep : "") + py_str(v[i]);
    return r;
  }
  if (f == "first" || f == "last") {
    if (!v.is_array()) error(e.pos, "'" + f + "' needs a list, got " + type_name(v));
    return v.empty() ? undefined() : f == "first" ? v.front() : v.back();
  }
  if (f == "list") {
    if (v.is_array()) return v;
    if (v.is_object()) {
      Value l = Value::array();
      for (auto it = v.begin(); it != v.end(); ++it) l.push_back(it.key());
      return l;
    }
    error(e.pos, "cannot make a list of a " + type_name(v));
  }
  if (f == "items") {
    Value l = Value::array();
    if (is_undefined(v)) return l;
    if (!v.is_object()) error(e.pos, "items needs a dict, got " + type_name(v));
    for (auto it = v.begin(); it != v.end(); ++it) l.push_back(Value::array({it.key(), it.value()}));
    return l;
  }
  if (f == "abs") {
    if (v.is_number_integer()) return std::llabs(v.get<long long>());
    if (v.is_number()) return std::fabs(v.get<double>());
    error(e.pos, "abs needs a number");
  }
  if (f == "int") {
    if (v.is_number()) return (long long)v.get<double>();
    if (v.is_string()) {
      try {
        return std::stoll(v.get<std::string>());
      } catch (const std::exception&) {
      }
    }
    return a.empty() ? Value(0LL) : a[0];
  }
  if (f == "capitalize" || f == "title") {
    std::string r = need_str();
    bool start = true;
    for (auto& c : r) {
      const bool alpha = std::isalpha((unsigned char)c);
      c = char(start && alpha ? std::toupper((unsigned char)c) : std::tolower((unsigned char)c));
      start = f == "title" ? !alpha : false;
      if (f == "capitalize" && alpha) start = false;
    }
    return r;
  }
  if (f == "select" || f == "reject") {
    if (a.empty() || !a[0].is_string()) error(e.pos, "'" + f + "' needs a test name");
    Value l = Value::array();
    const std::vector<Value> rest(a.begin() + 1, a.end());
    if (v.is_array())
      for (const auto& x : v)
        if (run_test(a[0].get<std::string>(), x, rest, e.pos) == (f == "select")) l.push_back(x);
    return l;
  }
  if (f == "map") {
    const Value attr = kwarg(e, "attribute");
    if (!attr.is_string()) error(e.pos, "only map(attribute=…) is supported");
    Value l = Value::array();
    if (v.is_array())
      for (const auto& x : v) l.push_back(get_attr(x, attr.get<std::string>(), e.pos));
    return l;
  }
  error(e.pos, "unsupported filter '" + f + "'");
}

bool Renderer::contains(const Value& hay, const Value& needle, size_t pos) {
  if (hay.is_string()) {
    if (!needle.is_string()) error(pos, "'in <string>' needs a string on the left");
    return hay.get_ref<const std::string&>().find(needle.get_ref<const std::string&>()) != std::string::npos;
  }
  if (hay.is_array()) {
    for (const auto& x : hay)
      if (py_equal(x, needle)) return true;
    return false;
  }
  if (hay.is_object()) return needle.is_string() && hay.contains(needle.get<std::string>());
  error(pos, "argument of type '" + type_name(hay) + "' is not a container");
}

Value Renderer::binary(const Expr& e) {
  const std::string& op = e.name;
  if (op == "and") {
    Value l = eval(*e.a);
    return truthy(l) ? eval(*e.b) : l;
  }
  if (op == "or") {
    Value l = eval(*e.a);
    return truthy(l) ? l : eval(*e.b);
  }
  const Value l = eval(*e.a), r = eval(*e.b);
  if (op == "==") return py_equal(l, r);
  if (op == "!=") return !py_equal(l, r);
  if (op == "in") return contains(r, l, e.pos);
  if (op == "not in") return !contains(r, l, e.pos);
  if (op == "~") return py_str(l) + py_str(r);
  if (is_undefined(l) || is_undefined(r)) error(e.pos, "operator '" + op + "' on an undefined value");
  const auto num = [](const Value& v) { return (v.is_number() || v.is_boolean()); };
  const auto as_d = [](const Value& v) { return v.is_boolean() ? double(v.get<bool>()) : v.get<double>(); };
  const auto as_i = [](const Value& v) { return v.is_boolean() ? (long long)v.get<bool>() : v.get<long long>(); };
  const bool ints = (l.is_number_integer() || l.is_boolean()) && (r.is_number_integer() || r.is_boolean());
  if (op == "<" || op == ">" || op == "<=" || op == ">=") {
    int c;
    if (num(l) && num(r)) c = ints ? (as_i(l) < as_i(r) ? -1 : as_i(l) > as_i(r)) : (as_d(l) < as_d(r) ? -1 : as_d(l) > as_d(r));
    else if (l.is_string() && r.is_string()) c = l.get_ref<const std::string&>().compare(r.get_ref<const std::string&>());
    else error(e.pos, "cannot compare " + type_name(l) + " and " + type_name(r));
    return op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0;
  }
  if (op == "+") {
    if (l.is_string() && r.is_string()) return l.get<std::string>() + r.get<std::string>();
    if (l.is_array() && r.is_array()) {
      Value s = l;
      for (const auto& x : r) s.push_back(x);
      return s;
    }
  }
  if (op == "*" && l.is_string() && r.is_number_integer()) {
    std::string s;
    for (long long i = 0; i < r.get<long long>() && s.size() < (1u << 24); ++i) s += l.get<std::string>();
    return s;
  }
  if (!num(l) || !num(r)) error(e.pos, "unsupported operand types for '" + op + "': " + type_name(l) + " and " + type_name(r));
  if (op == "/") {
    if (as_d(r) == 0.0) error(e.pos, "division by zero");
    return as_d(l) / as_d(r);
  }
  if (ints) {
    const long long x = as_i(l), y = as_i(r);
    if (op == "+") return x + y;
    if (op == "-") return x - y;
    if (op == "*") return x * y;
    if (op == "**") return y >= 0 ? Value((long long)std::llround(std::pow(double(x), double(y)))) : Value(std::pow(double(x), double(y)));
    if (y == 0) error(e.pos, "integer division or modulo by zero");
    long long q = x / y, m = x % y;
    if (m != 0 && ((m < 0) != (y < 0))) --q, m += y;  // Python floors
    return op == "//" ? Value(q) : Value(m);
  }
  const double x = as_d(l), y = as_d(r);
  if (op == "+") return x + y;
  if (op == "-") return x - y;
  if (op == "*") return x * y;
  if (op == "**") return std::pow(x, y);
  if (y == 0.0) error(e.pos, "float division or modulo by zero");
  if (op == "//") return std::floor(x / y);
  return x - y * std::floor(x / y);
}

}  // namespace

std::string render(const std::string& src, const NodeList& nodes, const Value& context) {
  Renderer r(src, context);
  r.run(nodes);
  return std::move(r.out);
}

}  // namespace imp::jinja
