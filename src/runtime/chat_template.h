// ChatTemplate — renders a conversation with a model's Jinja2 chat template
// (tokenizer.chat_template in GGUF metadata) the way transformers' apply_chat_template
// does: jinja2 with trim_blocks and lstrip_blocks, context {messages, add_generation_prompt,
// bos_token, eos_token} plus any extra variables, raise_exception() as a global.
// The interpreter (chat_template_{lexer,parser,eval,value}) covers the templates of
// SmolLM2 / ChatML, Gemma 3, Qwen2.5 and Llama 3.x; other constructs are an imp::Error
// naming the construct and its line and column.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace imp {

struct ModelFile;

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", …
  std::string content;
};

class ChatTemplate {
 public:
  // Parses the template; throws imp::Error on syntax the interpreter does not support.
  explicit ChatTemplate(std::string_view source);
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;

  // The model's template, bos/eos taken from its vocabulary. Throws when it has none.
  static ChatTemplate from_model(const ModelFile& model);

  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;
  // Full control: `messages` is any JSON array; `extra` adds variables (tools, date_string …).
  std::string render_json(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                          const nlohmann::ordered_json& extra = nlohmann::ordered_json::object()) const;

  std::string bos_token, eos_token;  // what the template sees as bos_token / eos_token

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace imp
