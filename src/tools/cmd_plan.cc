// `imp plan -m MODEL [--device cpu|cuda] [--storage mapped|f32|bf16] [--act-quant i16|f32|q8] [--kv-type T]
//  [--ctx C] [--batch B] [--json]`: the StoragePlan for a model — one row per weight (name, role, disk
// format, tier, kernel, bytes, reason) and the bytes per tier and in total. Reads no tensor
// data. With --device cuda also the GPU memory the plan needs (weights + KV cache for C
// tokens + workspace for B-token prefill), refused with the numbers when it exceeds the
// free memory cudaMemGetInfo reports.
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <map>

#include "backends/cpu/cpu_backend.h"
#include "common/error.h"
#include "io/model_file.h"
#include "planner/storage_plan.h"
#include "tools/commands.h"
#include "tools/device_select.h"
#include "tools/plan_options.h"

namespace imp {
namespace {

struct PlanArgs {
  std::string model;
  std::string device = "cpu";
  PlanOptions plan_opts;
  std::string kv_type = "f16";
  int64_t ctx = 4096, batch = 512;
  std::string act_quant = "i16";
  bool json = false;
};

void run_plan(const PlanArgs& a) {
  check_device_name(a.device);
  const auto model = open_model_file(a.model);
  const PlanPolicy policy = a.plan_opts.policy(parse_act_quant(a.act_quant));
  const StoragePlan plan = plan_storage(*model, device_caps(a.device), policy);
  // CUDA: the GPU memory the plan needs, refused before any allocation when it does not fit.
  const std::string gpu_memory =
      a.device == "cuda" ? cuda_memory_report(plan, model->config, std::min(a.ctx, std::max<int64_t>(model->config.n_ctx_train, 1)),
                                              parse_kv_type(a.kv_type), a.batch)
                         : std::string();

  std::map<std::string, int64_t> per_tier;
  // What a decode step multiplies (matmul weights in full; decode copies where the plan made
  // them) against the same without the copies: the decode cache's bandwidth gain.
  int64_t decode_read = 0, decode_read_without = 0, copies = 0;
  for (const auto& r : plan.rows) {
    per_tier[std::string(storage_tier_name(r.tier))] += r.bytes;
    if (r.has_decode_copy()) per_tier["decode copy " + std::string(storage_tier_name(r.decode_tier))] += r.decode_bytes, ++copies;
    if (r.op == WeightOp::kMatmul || r.role == WeightRole::kTiedEmbeddingLmHead) {
      decode_read += r.decode_bytes;
      decode_read_without += r.bytes;
    }
  }
  if (a.json) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& r : plan.rows) {
      rows.push_back({{"name", r.name}, {"role", weight_role_name(r.role)}, {"disk_format", format_name(r.disk_format)},
                      {"tier", storage_tier_name(r.tier)}, {"held_format", format_name(r.held_format)},
                      {"activation", format_name(r.activation)}, {"kernel", r.kernel}, {"elements", r.elements}, {"bytes", r.bytes},
                      {"decode_tier", storage_tier_name(r.decode_tier)}, {"decode_bytes", r.decode_bytes}, {"reason", r.reason}});
    }
    nlohmann::json out = {{"model", model->path}, {"device", plan.device}, {"rows", rows},
                          {"bytes_per_tier", per_tier}, {"total_bytes", plan.total_bytes()},
                          {"decode_matmul_bytes", decode_read}, {"decode_matmul_bytes_without_copies", decode_read_without}};
    if (!gpu_memory.empty()) out["gpu_memory"] = gpu_memory;
    fmt::print("{}\n", out.dump(2));
    return;
  }
  fmt::print("{}  on {}\n", model->path, plan.device);
  fmt::print("{:<28} {:<18} {:<7} {:<7} {:<26} {:>12}  {}\n", "tensor", "role", "disk", "tier", "kernel", "bytes",
             "reason");
  for (const auto& r : plan.rows) {
    fmt::print("{:<28} {:<18} {:<7} {:<7} {:<26} {:>12}  {}\n", r.name, weight_role_name(r.role),
               format_name(r.disk_format), storage_tier_name(r.tier), r.kernel, r.bytes, r.reason);
  }
  for (const auto& [tier, bytes] : per_tier) {
    fmt::print("tier {:<7} {:>14} bytes ({:.1f} MiB)\n", tier, bytes, double(bytes) / (1 << 20));
  }
  fmt::print("total        {:>14} bytes ({:.1f} MiB) in {} weights\n", plan.total_bytes(),
             double(plan.total_bytes()) / (1 << 20), plan.rows.size());
  if (copies > 0) {
    fmt::print("decode reads {:.1f} MiB of matmul weights per token with {} decode copies ({:.1f} MiB without: {:.2f}× less)\n",
               double(decode_read) / (1 << 20), copies, double(decode_read_without) / (1 << 20),
               double(decode_read_without) / double(std::max<int64_t>(decode_read, 1)));
  }
  if (!gpu_memory.empty()) fmt::print("{}", gpu_memory);
}

}  // namespace

void register_plan_command(CLI::App& app) {
  auto args = std::make_shared<PlanArgs>();
  auto* cmd = app.add_subcommand("plan", "Show where and how each weight will be held (the storage plan)");
  cmd->add_option("-m,--model", args->model, "GGUF file or Hugging Face folder")->required();
  cmd->add_option("--device", args->device, "Backend to plan for: cpu, cuda");
  cmd->add_option("--kv-type", args->kv_type, "KV cache type for the GPU memory estimate (cuda)");
  cmd->add_option("-c,--ctx", args->ctx, "Context for the GPU memory estimate (cuda; capped at the trained one)");
  cmd->add_option("--batch", args->batch, "Prefill batch for the GPU workspace estimate (cuda)");
  args->plan_opts.add_to(cmd);
  cmd->add_option("--act-quant", args->act_quant, "CPU matmul activations: i16 (default), f32 or q8 (as imp run)");
  cmd->add_flag("--json", args->json, "Print JSON");
  cmd->callback([args] { run_plan(*args); });
}

}  // namespace imp
