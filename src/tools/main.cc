// imp — one binary, many subcommands. Each subcommand lives in its own cmd_*.cc and
// registers itself here. Every imp::Error becomes one line on stderr and exit code 1.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <cstdio>
#include <exception>

#include "common/error.h"
#include "tools/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"imp — quantization-first LLM inference engine"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "imp 0.1.0");
  imp::register_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const imp::Error& e) {
    std::fflush(stdout);
    fmt::print(stderr, "imp: error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "imp: internal error: {}\n", e.what());
    return 2;
  }
  return 0;
}
