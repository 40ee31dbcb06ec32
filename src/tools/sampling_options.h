// The sampling flags `imp run` and `imp chat` share, registered in one place.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>

#include "runtime/sampler.h"

namespace imp {

// --temp --top-k --top-p --min-p --repeat-penalty --repeat-last-n --seed
void add_sampling_options(CLI::App* cmd, SamplerParams& sampling, int64_t& seed);

}  // namespace imp
