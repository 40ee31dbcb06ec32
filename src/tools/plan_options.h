// The storage-plan options the tools share: --storage (tier of linear layers),
// --decode-cache nvfp4 and --nvfp4-lm-head (the planner's decode copies,
// planner/storage_plan.h). One definition so run, chat, bench, plan, perplexity and kld
// spell and check them the same way.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "planner/storage_plan.h"

namespace imp {

struct PlanOptions {
  std::string storage = "mapped";
  std::string decode_cache = "none";
  bool nvfp4_lm_head = false;

  // eval: the help texts say that every pass runs on the decode copies.
  void add_to(CLI::App* cmd, bool eval = false);
  // Fails naming a bad --storage or --decode-cache value.
  PlanPolicy policy(ActQuant act_quant = ActQuant::kNone) const;
};

}  // namespace imp
