// Which tokens end generation: eos, eot and eom ids from the metadata, plus control tokens
// whose text is a known turn/document terminator (llama.cpp applies the same list, since
// many files mark only one of them as eos).
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/vocab.h"

namespace imp {

std::vector<int32_t> end_of_generation_ids(const Vocab& vocab);

}  // namespace imp
