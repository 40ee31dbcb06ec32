// Unit tests of the chat-template interpreter: whitespace control, expressions, loops,
// scoping, filters and tests, and errors for unsupported constructs and raise_exception.
#include <gtest/gtest.h>

#include "common/error.h"
#include "runtime/chat_template.h"

namespace imp {
namespace {

std::string render(const std::string& t, const nlohmann::ordered_json& msgs = nlohmann::ordered_json::array(),
                   bool gen = false) {
  return ChatTemplate(t).render_json(msgs, gen);
}

std::string error_of(const std::string& t) {
  try {
    render(t);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ChatTemplate, WhitespaceControlLikeTrimAndLstripBlocks) {
  EXPECT_EQ(render("a  {%- if true -%}  b  {%- endif -%}  c"), "abc");
  EXPECT_EQ(render("  {% if true %}\nx\n  {% endif %}\ny"), "x\ny");
  EXPECT_EQ(render("{{ 'a' }}\n{{ 'b' }}\n"), "a\nb");  // one trailing newline dropped
  EXPECT_EQ(render("{# c #}\nz"), "z");
}

TEST(ChatTemplate, ExpressionsAndOperators) {
  EXPECT_EQ(render("{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }}"), "7 3 2 3.5 1024");
  EXPECT_EQ(render("{{ 'a' ~ 1 ~ none }} {{ 'x' in 'xyz' }} {{ 3 not in [1, 2] }}"), "a1None True True");
  EXPECT_EQ(render("{{ [1, 'b', {'k': true}] }} {{ 'yes' if 1 > 2 else 'no' }}"), "[1, 'b', {'k': True}] no");
  EXPECT_EQ(render("{{ 'héllo'|upper }} {{ '  t  '|trim }} {{ [1,2,3]|length }} {{ x|default('d') }}"), "HéLLO t 3 d");
  EXPECT_EQ(render("{{ {'b': [1, 2.5], 'a': 'é\"'}|tojson }}"), "{\"b\": [1, 2.5], \"a\": \"é\\\"\"}");
  EXPECT_EQ(render("{{ [1,2,3,4][1:] }} {{ [1,2,3][::-1] }} {{ 'abc'[-1] }}"), "[2, 3, 4] [3, 2, 1] c");
  EXPECT_EQ(render("{{ x is defined }} {{ none is none }} {{ 'a' is string }} {{ 3 is not odd }}"), "False True True False");
}

TEST(ChatTemplate, LoopsScopesAndMessages) {
  const auto msgs = nlohmann::ordered_json::parse(R"([{"role":"user","content":"A"},{"role":"assistant","content":"B"}])");
  EXPECT_EQ(render("{% for m in messages %}{{ loop.index0 }}{{ loop.index }}{{ loop.first }}{{ loop.last }}"
                   "{{ m.role[0] }}{{ m['content'] }};{% endfor %}",
                   msgs),
            "01TrueFalseuA;12FalseTrueaB;");
  EXPECT_EQ(render("{% set x = 1 %}{% for i in [5] %}{% set x = i %}{{ x }}{% endfor %}{{ x }}"), "51");
  EXPECT_EQ(render("{% for k, v in {'a': 1}|items %}{{ k }}={{ v }}{% else %}none{% endfor %}"), "a=1");
  EXPECT_EQ(render("{% for i in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% if add_generation_prompt %}G{% elif messages %}M{% else %}E{% endif %}", msgs, true), "G");
  EXPECT_EQ(render("{% if add_generation_prompt %}G{% elif messages %}M{% else %}E{% endif %}", msgs, false), "M");
}

TEST(ChatTemplate, ErrorsNameTheConstructAndPosition) {
  EXPECT_NE(error_of("ab\n{% macro m() %}{% endmacro %}").find("'macro' at line 2, column 1"), std::string::npos);
  EXPECT_NE(error_of("{{ x|frobnicate }}").find("unsupported filter 'frobnicate'"), std::string::npos);
  EXPECT_NE(error_of("{{ 1 is weird }}").find("unsupported test 'weird'"), std::string::npos);
  EXPECT_NE(error_of("{% if true %}x").find("never closed"), std::string::npos);
  EXPECT_NE(error_of("{{ 'a' + 1 }}").find("unsupported operand"), std::string::npos);
  EXPECT_NE(error_of("{{ raise_exception('bad roles') }}").find("bad roles"), std::string::npos);
  EXPECT_NE(error_of("{{ 'unterminated }}").find("unterminated string"), std::string::npos);
  EXPECT_NE(error_of("{{ foo(1) }}").find("unsupported function 'foo'"), std::string::npos);
  EXPECT_NE(error_of("{{ x.y }}").find("undefined"), std::string::npos);
}

}  // namespace
}  // namespace imp
