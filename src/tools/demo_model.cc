#include "tools/demo_model.h"

#include <fmt/core.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "common/error.h"

#ifndef IMP_SOURCE_DIR
#define IMP_SOURCE_DIR ""
#endif

namespace imp {

namespace fs = std::filesystem;

namespace {

constexpr const char* kDemoFile = "SmolLM2-135M-Instruct.Q4_1.gguf";

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

// Single-quoted for sh: every ' becomes '\''.
std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace

std::string model_cache_dir() {
  if (const std::string c = env("IMP_MODEL_CACHE"); !c.empty()) return c;
  const std::string home = env("HOME");
  if (home.empty()) fail("cannot locate the model cache: neither IMP_MODEL_CACHE nor HOME is set");
  return (fs::path(home) / ".cache" / "imp" / "models").string();
}

std::string demo_model_path() {
  const std::string cache = model_cache_dir();
  const fs::path model = fs::path(cache) / kDemoFile;
  if (fs::is_regular_file(model)) return model.string();
  std::string script = env("IMP_FETCH_SCRIPT");
  if (script.empty() && std::string(IMP_SOURCE_DIR).size()) script = std::string(IMP_SOURCE_DIR) + "/scripts/fetch-models.sh";
  if (script.empty() || !fs::is_regular_file(script)) {
    fail("the demo model {} is not in {} and the fetch script {} is missing: run scripts/fetch-models.sh from an imp "
         "checkout, set IMP_FETCH_SCRIPT, or pass -m MODEL",
         kDemoFile, cache, script.empty() ? "(none compiled in)" : script);
  }
  fmt::print(stderr, "imp: fetching the demo model {} into {} with {}\n", kDemoFile, cache, script);
  std::fflush(stderr);
  const std::string cmd = fmt::format("IMP_MODEL_CACHE={} IMP_FETCH_STRICT=1 bash {} smollm2 1>&2", shell_quote(cache),
                                      shell_quote(script));
  const int rc = std::system(cmd.c_str());
  if (rc != 0 || !fs::is_regular_file(model)) {
    fail("fetching the demo model failed (exit status {} from {}); run it by hand to see why, or pass -m MODEL", rc, script);
  }
  return model.string();
}

}  // namespace imp
