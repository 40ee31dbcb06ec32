#include "tools/plan_options.h"

#include "common/error.h"

namespace imp {

void PlanOptions::add_to(CLI::App* cmd, bool eval) {
  cmd->add_option("--storage", storage, "Tier for linear layers: mapped, f32, bf16, nvfp4 (converted at load)");
  if (eval) {
    cmd->add_option("--decode-cache", decode_cache,
                    "nvfp4: score the weights a decode step would read with this GGUF→NVFP4 decode cache "
                    "(every pass runs on the copies), or none");
    cmd->add_flag("--nvfp4-lm-head", nvfp4_lm_head, "Score with the lm_head's NVFP4 decode copy (every pass)");
  } else {
    cmd->add_option("--decode-cache", decode_cache,
                    "nvfp4: decode steps read NVFP4 copies of GGUF linear weights above 4.5 bits/weight "
                    "(made at load; prefill keeps the source), or none (default)");
    cmd->add_flag("--nvfp4-lm-head", nvfp4_lm_head, "Decode steps read an NVFP4 copy of the lm_head");
  }
}

PlanPolicy PlanOptions::policy(ActQuant act_quant) const {
  PlanPolicy p;
  p.linear_tier = parse_storage_tier(storage);
  p.act_quant = act_quant;
  if (decode_cache == "nvfp4") {
    p.decode_cache_nvfp4 = true;
  } else if (decode_cache != "none") {
    fail("--decode-cache: '{}' is not nvfp4 or none", decode_cache);
  }
  p.nvfp4_lm_head = nvfp4_lm_head;
  return p;
}

}  // namespace imp
