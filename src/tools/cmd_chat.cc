// `imp chat -m MODEL [--system S] [--once QUESTION] [-n N] [sampling flags as imp run]
//  [--threads T] [--ctx C] [--kv-type T] [--ops fast|reference] [--storage …]`
//
// Conversation with a model through its chat template. Interactive: reads one user turn per
// line from stdin after a "> " prompt (on stderr, so stdout carries only replies) until EOF;
// --once answers one question and exits. Each turn renders the whole conversation with the
// template (add_generation_prompt), tokenizes it without adding BOS (templates spell
// bos_token themselves), and prefills only what differs from the tokens already in the KV
// cache: the cache is cut back to the longest common prefix (KvCache::set_n_tokens) since
// the template's spelling of earlier replies may tokenize differently from the sampled
// tokens. Replies stream and stop at the model's end-of-generation tokens.
#include <fmt/core.h>

#include <cstdio>
#include <iostream>
#include <random>

#include "formats/kv_type.h"
#include "backends/cpu/cpu_backend.h"
#include "common/error.h"
#include "io/model_file.h"
#include "model/model.h"
#include "planner/storage_plan.h"
#include "runtime/chat_template.h"
#include "runtime/generate.h"
#include "runtime/tokenizer.h"
#include "tools/commands.h"
#include "tools/sampling_options.h"
#include "tools/plan_options.h"

namespace imp {
namespace {

struct ChatArgs {
  std::string model, system, once;
  int64_t n_predict = 512;
  SamplerParams sampling;
  int64_t seed = -1;
  int threads = 0;
  int64_t ctx = 0;
  std::string kv_dtype = "f32", ops = "fast";  // as imp run
  PlanOptions plan_opts;
};

void run_chat(const ChatArgs& a) {
  if (a.n_predict <= 0) fail("imp chat: -n must be ≥ 1");
  const auto file = open_model_file(a.model);
  const ChatTemplate tmpl = ChatTemplate::from_model(*file);
  const auto tok = Tokenizer::from_model(*file);
  const CpuOpsPath path = a.ops == "fast"        ? CpuOpsPath::kFast
                          : a.ops == "reference" ? CpuOpsPath::kReference
                                                 : (fail("--ops: '{}' is not fast or reference", a.ops), CpuOpsPath::kFast);
  const KvType kv_dtype = parse_kv_type(a.kv_dtype);
  const PlanPolicy policy = a.plan_opts.policy();
  const StoragePlan plan = plan_storage(*file, cpu_device_caps(), policy);
  CpuBackend backend(path, a.threads, plan.act_quant);
  const std::unique_ptr<Model> model_ptr = create_model(*file, plan, backend);
  Model& model = *model_ptr;
  const int64_t n_ctx = a.ctx > 0 ? std::min(a.ctx, model.n_ctx()) : std::min<int64_t>(model.n_ctx(), 4096);
  KvCache kv(model.kv_config(n_ctx, kv_dtype));

  std::vector<ChatMessage> conv;
  if (!a.system.empty()) conv.push_back({"system", a.system});
  std::vector<int32_t> cached;  // the tokens whose K/V the cache holds, in order
  uint64_t seed = a.seed >= 0 ? uint64_t(a.seed) : std::random_device{}();
  const bool interactive = a.once.empty();

  const auto turn = [&](const std::string& user) {
    conv.push_back({"user", user});
    const std::string text = tmpl.render(conv, true);
    const std::vector<int32_t> ids = tok->encode(text, false, true);
    if (int64_t(ids.size()) >= n_ctx) fail("imp chat: the conversation ({} tokens) fills the context ({})", ids.size(), n_ctx);
    size_t common = 0;
    while (common < cached.size() && common < ids.size() && cached[common] == ids[common]) ++common;
    if (common == ids.size()) --common;  // generate() needs at least one new token
    kv.set_n_tokens(int64_t(common));
    GenerateParams gp;
    gp.n_predict = std::min<int64_t>(a.n_predict, n_ctx - int64_t(ids.size()));
    gp.sampling = a.sampling;
    gp.sampling.seed = seed++;
    gp.is_end_of_generation = [t = tok.get()](int32_t id) { return t->is_end_of_generation(id); };
    const std::span<const int32_t> fresh(ids.data() + common, ids.size() - common);
    const GenerateResult r = generate(model, kv, fresh, gp, [&](int32_t id) {
      if (!tok->is_end_of_generation(id)) fmt::print("{}", tok->token_bytes(id));
      std::fflush(stdout);
    });
    fmt::print("\n");
    std::fflush(stdout);
    cached = ids;
    // Every sampled token but the last went through a forward pass.
    if (!r.tokens.empty()) cached.insert(cached.end(), r.tokens.begin(), r.tokens.end() - 1);
    std::vector<int32_t> reply = r.tokens;
    if (r.stopped_at_eog) reply.pop_back();
    conv.push_back({"assistant", tok->decode(reply)});
    if (r.stopped_at_context) fmt::print(stderr, "[context full: the conversation cannot continue]\n");
  };

  if (!interactive) {
    turn(a.once);
    return;
  }
  std::string line;
  for (;;) {
    fmt::print(stderr, "> ");
    std::fflush(stderr);
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    turn(line);
  }
  fmt::print(stderr, "\n");
}

}  // namespace

void register_chat_command(CLI::App& app) {
  auto a = std::make_shared<ChatArgs>();
  auto* cmd = app.add_subcommand("chat", "Chat with a model on the CPU through its chat template");
  cmd->add_option("-m,--model", a->model, "GGUF file")->required();
  cmd->add_option("--system", a->system, "System prompt");
  cmd->add_option("--once", a->once, "Answer this one question and exit (non-interactive)");
  cmd->add_option("-n,--n-predict", a->n_predict, "Most tokens per reply");
  add_sampling_options(cmd, a->sampling, a->seed);
  cmd->add_option("-t,--threads", a->threads, "CPU threads (default: all hardware threads)");
  cmd->add_option("-c,--ctx", a->ctx, "Context length (default: min(trained, 4096))");
  cmd->add_option("--kv-type,--kv-dtype", a->kv_dtype, "KV cache type: f32, f16, bf16, fp8_e4m3, int8, int4, nvfp4");
  cmd->add_option("--ops", a->ops, "CPU op path: fast, reference");
  a->plan_opts.add_to(cmd);
  cmd->callback([a] { run_chat(*a); });
}

}  // namespace imp
