#include "runtime/end_of_generation.h"

#include <algorithm>
#include <array>
#include <string_view>

namespace imp {

std::vector<int32_t> end_of_generation_ids(const Vocab& v) {
  std::vector<int32_t> ids;
  for (const int32_t id : {v.eos, v.eot, v.eom}) if (id >= 0) ids.push_back(id);
  constexpr std::array<std::string_view, 8> kTerminators = {
      "<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<end_of_turn>", "<|end|>", "<|end_of_text|>", "</s>"};
  for (const auto text : kTerminators) {
    const int32_t id = v.find(text);
    if (id >= 0 && v.type(id) == TokenType::kControl) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

}  // namespace imp
