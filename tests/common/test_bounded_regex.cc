// BoundedRegex: Python re.match / re.search semantics for the patterns configs and flags
// carry, and a clear error instead of an endless match on a pathological pattern.
#include "common/bounded_regex.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "common/error.h"

namespace imp {
namespace {

TEST(BoundedRegex, AnchoredIsReMatchUnanchoredIsReSearch) {
  const BoundedRegex re(R"(.*mlp\.gate$)", "test pattern");
  EXPECT_TRUE(re.matches("model.layers.0.mlp.gate", true));
  EXPECT_FALSE(re.matches("model.layers.0.mlp.gate_proj", true));
  const BoundedRegex proj("gate_proj", "test pattern");
  EXPECT_FALSE(proj.matches("model.layers.0.mlp.gate_proj", true));  // not at the start
  EXPECT_TRUE(proj.matches("model.layers.0.mlp.gate_proj", false));
}

TEST(BoundedRegex, InvalidPatternNamesItself) {
  try {
    BoundedRegex("re(", "quantization ignore pattern");
    FAIL() << "an unbalanced parenthesis should not compile";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("quantization ignore pattern 're('"), std::string::npos) << e.what();
  }
}

TEST(BoundedRegex, PathologicalPatternStopsWithAnError) {
  // The classic ReDoS shape: nested quantifiers over the same characters, then a subject
  // that fails only at its end — ~2^64 ways to split the word before giving up.
  const BoundedRegex re(R"(^(\w+\s?)*$)", "test pattern");
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(re.matches(std::string(64, 'a') + "!", false), Error);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
}

TEST(BoundedRegex, OverlongPatternIsRefused) { EXPECT_THROW(BoundedRegex(std::string(2000, 'a'), "p"), Error); }

}  // namespace
}  // namespace imp
