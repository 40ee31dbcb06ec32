#include "runtime/chat_template_parser.h"

#include "common/error.h"
#include "runtime/chat_template_lexer.h"

namespace imp::jinja {
namespace {

ExprPtr make(ExprKind k, size_t pos) {
  auto e = std::make_unique<Expr>();
  e->kind = k;
  e->pos = pos;
  return e;
}

// Parses the expression tokens of one tag.
class ExprParser {
 public:
  ExprParser(const std::string& src, std::vector<Token> toks) : src_(src), t_(std::move(toks)) {}

  const Token& peek(size_t ahead = 0) const { return t_[std::min(i_ + ahead, t_.size() - 1)]; }
  bool at_end() const { return peek().kind == TokKind::kEnd; }
  bool is_op(const char* op) const { return peek().kind == TokKind::kOp && peek().text == op; }
  bool is_name(const char* n) const { return peek().kind == TokKind::kName && peek().text == n; }
  const Token& next() { return t_[std::min(i_++, t_.size() - 1)]; }

  [[noreturn]] void error(const std::string& what) const {
    const Token& t = peek();
    fail("chat template: {} at {} (found '{}')", what, describe_pos(src_, t.pos), t.kind == TokKind::kEnd ? "end of tag" : t.text);
  }
  void expect_op(const char* op) {
    if (!is_op(op)) error(std::string("expected '") + op + "'");
    ++i_;
  }
  std::string expect_name() {
    if (peek().kind != TokKind::kName) error("expected a name");
    return next().text;
  }
  void expect_end() {
    if (!at_end()) error("unexpected token");
  }

  ExprPtr expression(bool with_cond = true) {
    ExprPtr e = or_expr();
    if (with_cond && is_name("if")) {
      auto c = make(ExprKind::kCond, next().pos);
      c->a = or_expr();
      c->b = std::move(e);
      if (is_name("else")) {
        ++i_;
        c->c = expression();
      }
      return c;
    }
    return e;
  }

 private:
  ExprPtr binary(const std::string& op, size_t pos, ExprPtr l, ExprPtr r) {
    auto e = make(ExprKind::kBinary, pos);
    e->name = op;
    e->a = std::move(l);
    e->b = std::move(r);
    return e;
  }
  ExprPtr or_expr() {
    ExprPtr l = and_expr();
    while (is_name("or")) {
      const size_t p = next().pos;
      l = binary("or", p, std::move(l), and_expr());
    }
    return l;
  }
  ExprPtr and_expr() {
    ExprPtr l = not_expr();
    while (is_name("and")) {
      const size_t p = next().pos;
      l = binary("and", p, std::move(l), not_expr());
    }
    return l;
  }
  ExprPtr not_expr() {
    if (is_name("not")) {
      auto e = make(ExprKind::kUnary, next().pos);
      e->name = "not";
      e->a = not_expr();
      return e;
    }
    return compare();
  }
  ExprPtr compare() {
    ExprPtr l = concat();
    for (;;) {
      const Token& t = peek();
      std::string op;
      if (t.kind == TokKind::kOp && (t.text == "==" || t.text == "!=" || t.text == "<" || t.text == ">" || t.text == "<=" || t.text == ">=")) {
        op = t.text;
        ++i_;
      } else if (is_name("in")) {
        op = "in";
        ++i_;
      } else if (is_name("not") && peek(1).kind == TokKind::kName && peek(1).text == "in") {
        op = "not in";
        i_ += 2;
      } else {
        return l;
      }
      l = binary(op, t.pos, std::move(l), concat());
    }
  }
  ExprPtr concat() {
    ExprPtr l = additive();
    while (is_op("~")) {
      const size_t p = next().pos;
      l = binary("~", p, std::move(l), additive());
    }
    return l;
  }
  ExprPtr additive() {
    ExprPtr l = multiplicative();
    while (is_op("+") || is_op("-")) {
      const Token& t = next();
      l = binary(t.text, t.pos, std::move(l), multiplicative());
    }
    return l;
  }
  ExprPtr multiplicative() {
    ExprPtr l = power();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& t = next();
      l = binary(t.text, t.pos, std::move(l), power());
    }
    return l;
  }
  ExprPtr power() {
    ExprPtr l = unary();
    while (is_op("**")) {
      const size_t p = next().pos;
      l = binary("**", p, std::move(l), unary());
    }
    return l;
  }
  ExprPtr unary() {
    if (is_op("-") || is_op("+")) {
      const Token& t = next();
      auto e = make(ExprKind::kUnary, t.pos);
      e->name = t.text;
      e->a = unary();
      return filters(std::move(e));
    }
    return filters(postfix(primary()));
  }

  void call_args(Expr& e) {
    expect_op("(");
    while (!is_op(")")) {
      if (peek().kind == TokKind::kName && peek(1).kind == TokKind::kOp && peek(1).text == "=") {
        std::string k = next().text;
        ++i_;
        e.kwargs.emplace_back(std::move(k), expression());
      } else {
        e.args.push_back(expression());
      }
      if (!is_op(",")) break;
      ++i_;
    }
    expect_op(")");
  }

  ExprPtr filters(ExprPtr e) {
    for (;;) {
      if (is_op("|")) {
        ++i_;
        auto f = make(ExprKind::kFilter, peek().pos);
        f->name = expect_name();
        f->a = std::move(e);
        if (is_op("(")) call_args(*f);
        e = std::move(f);
      } else if (is_name("is")) {
        ++i_;
        auto t = make(ExprKind::kTest, peek().pos);
        if (is_name("not")) {
          ++i_;
          t->negated = true;
        }
        t->name = expect_name();
        t->a = std::move(e);
        if (is_op("(")) {
          call_args(*t);
        } else if (peek().kind == TokKind::kString || peek().kind == TokKind::kInt || peek().kind == TokKind::kFloat ||
                   (peek().kind == TokKind::kName && !is_name("and") && !is_name("or") && !is_name("if") &&
                    !is_name("else") && !is_name("in") && !is_name("not") && !is_name("is"))) {
          t->args.push_back(primary());  // `x is divisibleby 3`, `x is sameas none`
        }
        e = std::move(t);
      } else {
        return e;
      }
    }
  }

  ExprPtr postfix(ExprPtr e) {
    for (;;) {
      if (is_op(".")) {
        const size_t p = next().pos;
        auto g = make(ExprKind::kGetAttr, p);
        if (peek().kind == TokKind::kInt) {  // `x.0` is x[0] in jinja2
          g->kind = ExprKind::kGetItem;
          g->b = make(ExprKind::kLiteral, peek().pos);
          g->b->value = next().i;
        } else {
          g->name = expect_name();
        }
        g->a = std::move(e);
        e = std::move(g);
      } else if (is_op("[")) {
        const size_t p = next().pos;
        ExprPtr parts[3];
        int n = 0;
        bool slice = false;
        for (;;) {
          if (!is_op(":") && !is_op("]")) parts[n] = expression();
          if (is_op(":")) {
            ++i_;
            slice = true;
            if (++n > 2) error("too many ':' in a slice");
            continue;
          }
          break;
        }
        expect_op("]");
        auto g = make(slice ? ExprKind::kSlice : ExprKind::kGetItem, p);
        if (!slice && !parts[0]) error("empty subscript");
        g->a = std::move(e);
        g->b = std::move(parts[0]);
        if (slice) {
          g->args.push_back(std::move(parts[1]));
          g->args.push_back(std::move(parts[2]));
        }
        e = std::move(g);
      } else if (is_op("(")) {
        auto c = make(ExprKind::kCall, peek().pos);
        c->a = std::move(e);
        call_args(*c);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  ExprPtr primary() {
    const Token& t = peek();
    auto lit = [&](Value v) {
      auto e = make(ExprKind::kLiteral, t.pos);
      e->value = std::move(v);
      ++i_;
      return e;
    };
    switch (t.kind) {
      case TokKind::kString: {
        auto e = lit(t.text);
        // Adjacent literals concatenate, as in Python.
        while (peek().kind == TokKind::kString) e->value = e->value.get<std::string>() + next().text;
        return e;
      }
      case TokKind::kInt: return lit(t.i);
      case TokKind::kFloat: return lit(t.f);
      case TokKind::kName:
        if (t.text == "true" || t.text == "True") return lit(true);
        if (t.text == "false" || t.text == "False") return lit(false);
        if (t.text == "none" || t.text == "None") return lit(nullptr);
        {
          auto e = make(ExprKind::kName, t.pos);
          e->name = next().text;
          return e;
        }
      case TokKind::kOp:
        if (t.text == "(") {
          ++i_;
          ExprPtr first = expression();
          if (is_op(",")) {  // a tuple: evaluated as a list
            auto l = make(ExprKind::kList, t.pos);
            l->args.push_back(std::move(first));
            while (is_op(",")) {
              ++i_;
              if (is_op(")")) break;
              l->args.push_back(expression());
            }
            first = std::move(l);
          }
          expect_op(")");
          return first;
        }
        if (t.text == "[") {
          auto l = make(ExprKind::kList, next().pos);
          while (!is_op("]")) {
            l->args.push_back(expression());
            if (!is_op(",")) break;
            ++i_;
          }
          expect_op("]");
          return l;
        }
        if (t.text == "{") {
          auto d = make(ExprKind::kDict, next().pos);
          while (!is_op("}")) {
            d->args.push_back(expression());
            expect_op(":");
            d->args.push_back(expression());
            if (!is_op(",")) break;
            ++i_;
          }
          expect_op("}");
          return d;
        }
        break;
      case TokKind::kEnd: break;
    }
    error("expected an expression");
  }

  const std::string& src_;
  std::vector<Token> t_;
  size_t i_ = 0;
};

class TemplateParser {
 public:
  explicit TemplateParser(const std::string& src) : src_(src), segs_(split_segments(src)) {}

  NodeList parse() {
    NodeList out;
    std::string stop = parse_body(out, {});
    if (!stop.empty()) fail("chat template: unexpected '{{% {} %}}' at {}", stop, describe_pos(src_, segs_[k_ - 1].pos));
    return out;
  }

 private:
  // Parses nodes until one of `stops` (a statement keyword) or the end; returns the stop
  // keyword met ("" at the end) with its parser positioned after the keyword.
  std::string parse_body(NodeList& out, const std::vector<std::string>& stops) {
    while (k_ < segs_.size()) {
      const Segment& s = segs_[k_++];
      auto n = std::make_unique<Node>();
      n->pos = s.pos;
      if (s.kind == SegKind::kText) {
        n->kind = NodeKind::kText;
        n->text = s.text;
        out.push_back(std::move(n));
        continue;
      }
      ExprParser p(src_, tokenize_tag(src_, s.text, s.inner));
      if (s.kind == SegKind::kExpr) {
        n->kind = NodeKind::kOutput;
        n->expr = p.expression();
        p.expect_end();
        out.push_back(std::move(n));
        continue;
      }
      if (p.peek().kind != TokKind::kName) p.error("expected a statement keyword");
      const std::string kw = p.next().text;
      for (const auto& stop : stops) {
        if (kw == stop) {
          cur_ = std::make_unique<ExprParser>(std::move(p));
          return kw;
        }
      }
      if (kw == "if") {
        n->kind = NodeKind::kIf;
        ExprPtr cond = p.expression();
        p.expect_end();
        for (;;) {
          NodeList body;
          const std::string stop = parse_body(body, {"elif", "else", "endif"});
          n->branches.emplace_back(std::move(cond), std::move(body));
          if (stop == "elif") {
            cond = cur_->expression();
            cur_->expect_end();
            continue;
          }
          if (stop == "else") {
            cur_->expect_end();
            if (parse_body(n->else_body, {"endif"}) != "endif") unclosed("if", s.pos);
            cur_->expect_end();
            break;
          }
          if (stop != "endif") unclosed("if", s.pos);
          cur_->expect_end();
          break;
        }
      } else if (kw == "for") {
        n->kind = NodeKind::kFor;
        n->targets.push_back(p.expect_name());
        while (p.is_op(",")) {
          p.next();
          n->targets.push_back(p.expect_name());
        }
        if (!p.is_name("in")) p.error("expected 'in'");
        p.next();
        n->expr = p.expression(false);
        if (p.is_name("if")) {
          p.next();
          n->filter = p.expression(false);
        }
        if (p.is_name("recursive")) p.error("unsupported 'recursive' loop");
        p.expect_end();
        std::string stop = parse_body(n->body, {"else", "endfor"});
        if (stop == "else") {
          cur_->expect_end();
          stop = parse_body(n->else_body, {"endfor"});
        }
        if (stop != "endfor") unclosed("for", s.pos);
        cur_->expect_end();
      } else if (kw == "set") {
        n->kind = NodeKind::kSet;
        n->targets.push_back(p.expect_name());
        if (p.is_op(".")) p.error("unsupported attribute assignment (namespace)");
        if (!p.is_op("=")) p.error("unsupported block 'set' (expected '=')");
        p.next();
        n->expr = p.expression();
        p.expect_end();
      } else {
        fail("chat template: unsupported statement '{}' at {}", kw, describe_pos(src_, s.pos));
      }
      out.push_back(std::move(n));
    }
    return "";
  }

  [[noreturn]] void unclosed(const char* what, size_t pos) const {
    fail("chat template: '{{% {} %}}' at {} is never closed", what, describe_pos(src_, pos));
  }

  const std::string& src_;
  std::vector<Segment> segs_;
  size_t k_ = 0;
  std::unique_ptr<ExprParser> cur_;  // the tag that ended the last parse_body
};

}  // namespace

NodeList parse_template(const std::string& src) { return TemplateParser(src).parse(); }

}  // namespace imp::jinja
