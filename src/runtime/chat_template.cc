#include "runtime/chat_template.h"
#include "runtime/builtin_chat_templates.h"

#include "common/error.h"
#include "io/model_file.h"
#include "runtime/chat_template_eval.h"
#include "runtime/chat_template_lexer.h"
#include "runtime/chat_template_parser.h"
#include "runtime/tokenizer.h"

namespace imp {

struct ChatTemplate::Impl {
  std::string source;  // normalized
  jinja::NodeList nodes;
};

ChatTemplate::ChatTemplate(std::string_view source) : impl_(std::make_unique<Impl>()) {
  impl_->source = jinja::normalize_source(source);
  impl_->nodes = jinja::parse_template(impl_->source);
}
ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;

ChatTemplate ChatTemplate::from_model(const ModelFile& model) {
  std::string text;
  const auto& md = model.metadata;
  if (auto it = md.find("tokenizer.chat_template"); it != md.end() && it->is_string()) {
    text = it->get<std::string>();
  } else if (auto ct = md.find("chat_template"); ct != md.end() && ct->is_string()) {
    text = ct->get<std::string>();
  } else if (const auto builtin = builtin_chat_template(model.config.architecture)) {
    text = std::string(*builtin);  // the file has none; the architecture's published template
  } else {
    fail("{}: the model carries no chat template (tokenizer.chat_template) and imp has no built-in one for "
         "architecture '{}'", model.path, model.config.architecture);
  }
  ChatTemplate t(text);
  const auto tok = Tokenizer::from_model(model);
  if (tok->bos_id() >= 0) t.bos_token = tok->token_bytes(tok->bos_id());
  if (tok->eos_id() >= 0) t.eos_token = tok->token_bytes(tok->eos_id());
  return t;
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  nlohmann::ordered_json m = nlohmann::ordered_json::array();
  for (const auto& msg : messages) m.push_back({{"role", msg.role}, {"content", msg.content}});
  return render_json(m, add_generation_prompt);
}

std::string ChatTemplate::render_json(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                      const nlohmann::ordered_json& extra) const {
  if (!messages.is_array()) fail("chat template: messages must be a JSON array");
  nlohmann::ordered_json ctx = nlohmann::ordered_json::object();
  ctx["bos_token"] = bos_token;
  ctx["eos_token"] = eos_token;
  // transformers always passes these two, as None when the caller gives none.
  ctx["tools"] = nullptr;
  ctx["documents"] = nullptr;
  if (extra.is_object())
    for (auto it = extra.begin(); it != extra.end(); ++it) ctx[it.key()] = it.value();
  ctx["messages"] = messages;
  ctx["add_generation_prompt"] = add_generation_prompt;
  return jinja::render(impl_->source, impl_->nodes, ctx);
}

}  // namespace imp
