// `imp run [-m MODEL] (-p PROMPT | --tokens 1,2,3) [-n N] [--temp T] [--top-k K] [--top-p P]
//  [--min-p P] [--repeat-penalty R] [--seed S] [--threads T] [--ctx C] [--kv-type T]
//  [--ops fast|reference] [--act-quant i16|f32|q8] [--storage mapped|f32|bf16] [--device cpu|cuda] [--gemm bf16|f32]
//  [--ignore-eos] [--dump-logits PATH]`
//
// Without -m, runs the demo model (SmolLM2-135M-Instruct), fetching it on first use
// (tools/demo_model.h). Plans storage, loads the model (llama or gemma3, model/model.h) on the
// chosen backend (--device), prefills the prompt and decodes,
// streaming text (or, with --tokens, the generated ids separated by spaces) to stdout.
// The last lines, on stderr, give prompt and generation tokens/s, then peak RSS and the
// mapped vs owned weight bytes (tools/memory_report.h).
// --dump-logits writes the float32 logits of every prompt position, (n_prompt, n_vocab)
// row-major, no header.
#include <fmt/core.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include "backends/cpu/cpu_backend.h"
#include "common/error.h"
#include "io/model_file.h"
#include "model/model.h"
#include "planner/storage_plan.h"
#include "runtime/generate.h"
#include "runtime/tokenizer.h"
#include "tools/commands.h"
#include "tools/device_select.h"
#include "tools/demo_model.h"
#include "tools/memory_report.h"
#include "tools/sampling_options.h"
#include "tools/plan_options.h"

namespace imp {
namespace {

struct RunArgs {
  std::string model, prompt, tokens, dump_logits;
  int64_t n_predict = 128;
  SamplerParams sampling;
  int64_t seed = -1;
  int threads = 0;
  int64_t ctx = 0;
  // KV default f32: an f16 cache moves SmolLM2-135M's logits by up to 2.4e-3 relative
  // (measured against HF), over the 1e-3 the CPU path promises; f16 halves the cache.
  std::string kv_type = "f32", ops = "fast", act_quant = "i16", act_emulate = "none";
  PlanOptions plan_opts;
  std::string device = "cpu", gemm = "bf16";
  bool ignore_eos = false;
};

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || v < 0 || v > INT32_MAX) fail("--tokens: '{}' is not a token id", item);
    ids.push_back(int32_t(v));
  }
  if (ids.empty()) fail("--tokens: no token ids given");
  return ids;
}

void run_run(RunArgs a) {
  if (a.prompt.empty() == a.tokens.empty()) fail("imp run: give exactly one of -p PROMPT or --tokens IDS");
  if (a.n_predict < 0) fail("imp run: -n must be ≥ 0");
  if (a.model.empty()) a.model = demo_model_path();
  const auto file = open_model_file(a.model);
  const CpuOpsPath path = a.ops == "fast"        ? CpuOpsPath::kFast
                          : a.ops == "reference" ? CpuOpsPath::kReference
                                                 : (fail("--ops: '{}' is not fast or reference", a.ops), CpuOpsPath::kFast);
  const KvType kv_type = parse_kv_type(a.kv_type);
  const ActQuant act_quant = parse_act_quant(a.act_quant);
  const ActEmulation act_emulation = parse_act_emulation(a.act_emulate);
  if (act_quant == ActQuant::kQ8 && act_emulation != ActEmulation::kNone) {
    fail("--act-emulate {} needs F32 matmul activations; it cannot be combined with --act-quant q8", a.act_emulate);
  }
  if (act_quant == ActQuant::kQ8 && path == CpuOpsPath::kReference) {
    fail("--act-quant q8 applies to --ops fast only (the reference path never quantizes activations)");
  }
  const PlanPolicy policy = a.plan_opts.policy(act_quant);
  const DeviceCaps caps = device_caps(a.device);
  require_kv_type(caps, kv_type, file->config.head_dim);
  const StoragePlan plan = plan_storage(*file, caps, policy);
  const int64_t trained = std::max<int64_t>(file->config.n_ctx_train, 1);
  const int64_t n_ctx = a.ctx > 0 ? std::min(a.ctx, trained) : std::min<int64_t>(trained, 4096);
  check_device_memory(a.device, plan, file->config, n_ctx, kv_type, n_ctx);
  std::unique_ptr<Backend> backend_ptr = make_backend(a.device, path, a.threads, plan.act_quant, a.gemm, act_emulation);
  Backend& backend = *backend_ptr;
  const std::unique_ptr<Model> model_ptr = create_model(*file, plan, backend);
  Model& model = *model_ptr;
  std::unique_ptr<KvStore> kv_ptr = backend.create_kv_cache(model.kv_config(n_ctx, kv_type));
  KvStore& kv = *kv_ptr;

  std::unique_ptr<Tokenizer> tok;
  std::vector<int32_t> prompt;
  GenerateParams gp;
  if (!a.tokens.empty()) {
    prompt = parse_ids(a.tokens);
    const TokenizerInfo& ti = file->tokenizer;
    gp.is_end_of_generation = [eos = ti.eos_id.value_or(-1), eot = ti.eot_id.value_or(-1)](int32_t id) {
      return id == eos || id == eot;
    };
  } else {
    tok = Tokenizer::from_model(*file);
    prompt = tok->encode(a.prompt, tok->add_bos_default(), true);
    gp.is_end_of_generation = [t = tok.get()](int32_t id) { return t->is_end_of_generation(id); };
  }
  if (a.ignore_eos) gp.is_end_of_generation = nullptr;
  gp.n_predict = a.n_predict;
  gp.sampling = a.sampling;
  gp.sampling.seed = a.seed >= 0 ? uint64_t(a.seed) : std::random_device{}();
  gp.keep_prompt_logits = !a.dump_logits.empty();

  bool first = true;
  const auto on_token = [&](int32_t id) {
    if (tok) {
      if (!tok->is_end_of_generation(id)) fmt::print("{}", tok->token_bytes(id));
    } else {
      fmt::print("{}{}", first ? "" : " ", id);
    }
    first = false;
    std::fflush(stdout);
  };
  const GenerateResult r = generate(model, kv, prompt, gp, on_token);
  fmt::print("\n");
  std::fflush(stdout);

  if (!a.dump_logits.empty()) {
    std::ofstream out(a.dump_logits, std::ios::binary);
    out.write(reinterpret_cast<const char*>(r.prompt_logits.data()), std::streamsize(r.prompt_logits.size() * sizeof(float)));
    if (!out) fail("--dump-logits: cannot write '{}'", a.dump_logits);
  }
  const double gen_tps = r.decode_steps > 0 && r.decode_seconds > 0 ? double(r.decode_steps) / r.decode_seconds : 0.0;
  if (auto* cpu = dynamic_cast<CpuBackend*>(&backend)) {
    fmt::print(stderr, "prompt: {} tokens, {:.1f} tokens/s | generation: {} tokens, {:.1f} tokens/s | {} ops, {} threads, {} | "
               "activations: {}{}\n",
               r.n_prompt, double(r.n_prompt) / r.prompt_seconds, r.tokens.size(), gen_tps, a.ops, cpu->n_threads(),
               cpu_isa_name(cpu->isa()),
               cpu->act_emulator().mode() != ActEmulation::kNone ? cpu->act_emulator().summary() : cpu->act_quant_reason(), r.stopped_at_context ? " | stopped: context full" : "");
  } else {
    fmt::print(stderr, "prompt: {} tokens, {:.1f} tokens/s | generation: {} tokens, {:.1f} tokens/s | {} | prefill gemm {}{}\n",
               r.n_prompt, double(r.n_prompt) / r.prompt_seconds, r.tokens.size(), gen_tps, backend.name(), a.gemm,
               r.stopped_at_context ? " | stopped: context full" : "");
  }
  fmt::print(stderr, "memory: {}\n", memory_summary(plan));
}

}  // namespace

void register_run_command(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  auto* cmd = app.add_subcommand("run", "Generate text with a model on the CPU");
  cmd->add_option("-m,--model", a->model, "GGUF file or Hugging Face folder (default: the demo model, fetched on first use)");
  cmd->add_option("-p,--prompt", a->prompt, "Prompt text");
  cmd->add_option("--tokens", a->tokens, "Prompt as token ids, e.g. 1,2,3 (prints generated ids)");
  cmd->add_option("-n,--n-predict", a->n_predict, "Tokens to generate");
  add_sampling_options(cmd, a->sampling, a->seed);
  cmd->add_option("-t,--threads", a->threads, "CPU threads (default: all hardware threads)");
  cmd->add_option("-c,--ctx", a->ctx, "Context length (default: min(trained, 4096))");
  // --kv-dtype is the engine's earlier spelling, kept as an alias.
  cmd->add_option("--kv-type,--kv-dtype", a->kv_type,
                  "KV cache type: f32 (default, accurate), f16, bf16, fp8_e4m3, int8, int4, nvfp4");
  cmd->add_option("--ops", a->ops, "CPU op path: fast, reference");
  cmd->add_option("--act-quant", a->act_quant,
                  "Fast-path matmul activations: i16 (default: 16-bit integer dots, outliers exact, within "
                  "1e-3 of F32; CUDA: f16 x in the tensor-core GEMVs), f32 (exact decode) or q8 (int8 dots, "
                  "~1e-1 error with outliers)");
  cmd->add_option("--act-emulate", a->act_emulate,
                  "Fake-quantize every linear's input activations (preview W4A4/W8A8 numerics): none, nvfp4, mxfp4, fp8");
  a->plan_opts.add_to(cmd);
  cmd->add_option("--device", a->device, "Backend: cpu (default) or cuda");
  cmd->add_option("--gemm", a->gemm, "CUDA prefill GEMM precision: bf16 (default, cuBLAS BF16) or f32");
  cmd->add_flag("--ignore-eos", a->ignore_eos, "Keep generating past end-of-generation tokens");
  cmd->add_option("--dump-logits", a->dump_logits, "Write float32 logits of every prompt position here");
  cmd->callback([a] { run_run(*a); });
}

}  // namespace imp
