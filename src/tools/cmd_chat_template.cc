// `imp chat-template -m MODEL (--messages JSON | --messages-file PATH) [--add-generation-prompt]
//  [--template-file PATH] [--vars JSON]`
//
// Renders a conversation with the model's chat template (or the Jinja2 file given by
// --template-file) and prints the exact text, without a trailing newline. --messages is a
// JSON array of {"role", "content"} objects; --vars adds template variables (tools,
// date_string …). For debugging prompts and for the reference tests against transformers.
#include <fmt/core.h>

#include <fstream>
#include <sstream>

#include "common/error.h"
#include "io/model_file.h"
#include "runtime/chat_template.h"
#include "tools/commands.h"

namespace imp {
namespace {

struct ChatTemplateArgs {
  std::string model, messages, messages_file, template_file, vars, bos, eos;
  bool add_generation_prompt = false;
};

std::string read_text(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot read '{}'", what, path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::ordered_json parse_json(const std::string& text, const char* what) {
  try {
    return nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON ({})", what, e.what());
  }
}

void run_chat_template(const ChatTemplateArgs& a) {
  if (a.messages.empty() == a.messages_file.empty()) fail("imp chat-template: give exactly one of --messages or --messages-file");
  if (a.model.empty() && a.template_file.empty()) fail("imp chat-template: give -m MODEL or --template-file PATH");
  const auto messages = a.messages.empty() ? parse_json(read_text(a.messages_file, "--messages-file"), "--messages-file")
                                           : parse_json(a.messages, "--messages");
  const auto vars = a.vars.empty() ? nlohmann::ordered_json::object() : parse_json(a.vars, "--vars");
  if (!vars.is_object()) fail("--vars: must be a JSON object");
  std::unique_ptr<ChatTemplate> t;
  if (!a.template_file.empty()) {
    t = std::make_unique<ChatTemplate>(read_text(a.template_file, "--template-file"));
    if (!a.model.empty()) {
      const ChatTemplate m = ChatTemplate::from_model(*open_model_file(a.model));
      t->bos_token = m.bos_token;
      t->eos_token = m.eos_token;
    }
  } else {
    t = std::make_unique<ChatTemplate>(ChatTemplate::from_model(*open_model_file(a.model)));
  }
  if (!a.bos.empty()) t->bos_token = a.bos;
  if (!a.eos.empty()) t->eos_token = a.eos;
  fmt::print("{}", t->render_json(messages, a.add_generation_prompt, vars));
  std::fflush(stdout);
}

}  // namespace

void register_chat_template_command(CLI::App& app) {
  auto a = std::make_shared<ChatTemplateArgs>();
  auto* cmd = app.add_subcommand("chat-template", "Render a conversation with a model's chat template");
  cmd->add_option("-m,--model", a->model, "GGUF file (template, bos_token and eos_token)");
  cmd->add_option("--messages", a->messages, "JSON array of {\"role\", \"content\"} messages");
  cmd->add_option("--messages-file", a->messages_file, "File holding the messages JSON");
  cmd->add_option("--template-file", a->template_file, "Jinja2 template file to use instead of the model's");
  cmd->add_option("--vars", a->vars, "JSON object of extra template variables");
  cmd->add_option("--bos-token", a->bos, "bos_token text (overrides the model's)");
  cmd->add_option("--eos-token", a->eos, "eos_token text (overrides the model's)");
  cmd->add_flag("--add-generation-prompt", a->add_generation_prompt, "End with the assistant turn's header");
  cmd->callback([a] { run_chat_template(*a); });
}

}  // namespace imp
