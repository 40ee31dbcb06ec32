// `imp tokenize -m MODEL [--no-special] [--bos|--no-bos] [--ids-only] (TEXT | --file F)`:
// the token ids a model's tokenizer gives a text. Default output is one token per line,
// "id<TAB>piece" with the piece's bytes shown as a C-escaped string; --ids-only prints the
// ids on one line separated by spaces. BOS follows the model's metadata unless --bos/--no-bos.
#include <fmt/core.h>

#include <fstream>
#include <sstream>

#include "common/error.h"
#include "io/model_file.h"
#include "runtime/tokenizer.h"
#include "tools/commands.h"

namespace imp {
namespace {

struct TokenizeArgs {
  std::string model, text, file;
  bool no_special = false, ids_only = false, bos = false, no_bos = false;
};

std::string escaped(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') out += fmt::format("\\{}", c);
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (u < 0x20 || u == 0x7F) out += fmt::format("\\x{:02x}", u);
    else out += c;  // UTF-8 passes through; a split sequence shows as the terminal renders it
  }
  return out + "\"";
}

void run_tokenize(const TokenizeArgs& a) {
  std::string text = a.text;
  if (!a.file.empty()) {
    std::ifstream f(a.file, std::ios::binary);
    if (!f) fail("{}: cannot open the text file", a.file);
    std::stringstream ss;
    ss << f.rdbuf();
    text = ss.str();
  }
  const auto model = open_model_file(a.model);
  const auto tok = Tokenizer::from_model(*model);
  const bool add_bos = a.bos ? true : a.no_bos ? false : tok->add_bos_default();
  const auto ids = tok->encode(text, add_bos, !a.no_special);
  if (a.ids_only) {
    std::string line;
    for (size_t k = 0; k < ids.size(); ++k) line += fmt::format("{}{}", k ? " " : "", ids[k]);
    fmt::print("{}\n", line);
    return;
  }
  for (const int32_t id : ids) fmt::print("{}\t{}\n", id, escaped(tok->token_bytes(id)));
}

}  // namespace

void register_tokenize_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("tokenize", "Show the token ids a model's tokenizer gives a text");
  static TokenizeArgs args;
  cmd->add_option("-m,--model", args.model, "a .gguf file or a Hugging Face folder")->required();
  auto* text = cmd->add_option("TEXT", args.text, "the text to tokenize");
  auto* file = cmd->add_option("-f,--file", args.file, "read the text from this file (raw bytes)");
  text->excludes(file);
  cmd->add_flag("--no-special", args.no_special, "treat special-token text such as <|im_start|> as plain text");
  auto* bos = cmd->add_flag("--bos", args.bos, "prepend BOS even if the model does not ask for it");
  cmd->add_flag("--no-bos", args.no_bos, "never prepend BOS")->excludes(bos);
  cmd->add_flag("--ids-only", args.ids_only, "print only the ids, space-separated on one line");
  cmd->callback([] {
    if (args.text.empty() && args.file.empty()) fail("tokenize: give a TEXT or --file");
    run_tokenize(args);
  });
}

}  // namespace imp
