// `imp bench -m MODEL [-p 512] [-n 128] [--threads T] [--kv-type T] [--ops fast|reference]
//  [--act-quant i16|f32|q8] [--storage mapped|f32|bf16] [--device cpu|cuda] [--gemm bf16|f32] [--bw-mib 512]
//  [--trace-kernels N]
//  [--seed S] [--json]`
//
// Measures, in one run on this machine:
//   prompt processing : one forward pass over p random valid token ids (uniform in
//                       [0, n_vocab), seeded) → p / seconds;
//   generation        : n greedy tokens after that prompt, end-of-generation ignored →
//                       decode steps / seconds (sampling included, as `imp run` reports);
//   memory bandwidth  : (--device cuda: device copy bandwidth, bytes read + written, 1 GiB)
//                       T threads each sum their slice of a ≥ 512 MiB buffer of uint64
//                       (streaming reads, far larger than any cache), best of 5 passes;
//   decode ceiling    : bandwidth ÷ bytes read per decoded token, where bytes per token =
//                       every weight a decode step multiplies with (the planned tier's bytes;
//                       an untied embedding table contributes one row) + the KV rows read at
//                       the mean decode context p + (n − 1)/2 (K and V, every layer and KV head).
//                       A decode step must stream all of these, so no CPU can decode faster
//                       than bandwidth / bytes; the report gives the fraction reached.
//   matrix rates      : (--device cuda) measured dense GEMM rates of the tensor cores,
//                       BF16 and FP8 (cuBLASLt 8192³, backends/cuda/matrix_rate.h); the
//                       prefill rate 2 · (linear weight elements) · p / prompt seconds is
//                       printed as a fraction of each (attention and the one lm_head row
//                       the prompt's last position needs are not counted as FLOPs).
// --json prints one JSON object with every number; otherwise a short table.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "common/error.h"
#include "io/model_file.h"
#include "model/model.h"
#include "planner/storage_plan.h"
#include "runtime/generate.h"
#include "tools/commands.h"
#include "tools/device_select.h"
#include "tools/memory_report.h"
#include "tools/plan_options.h"

namespace imp {
namespace {

bool cpu_device(const std::string& device) { return device != "cuda"; }

struct BenchArgs {
  std::string model, kv_type = "f16", ops = "fast", act_quant = "i16", device = "cpu", gemm = "bf16";
  PlanOptions plan_opts;
  int64_t n_prompt = 512, n_gen = 128, bw_mib = 512, seed = 1234;
  int threads = 0;
  int trace_steps = 0;  // --trace-kernels N: that many decode-step replays traced kernel by kernel
  bool json = false;
};

struct Bandwidth {
  double bytes_per_s = 0.0;
  int64_t buffer_bytes = 0;
  int passes = 0;
};

// Best-of-`passes` multi-threaded streaming read. The sums feed a volatile sink so the
// reads cannot be dropped; four accumulators keep the loop from serialising on one add.
Bandwidth measure_read_bandwidth(int64_t mib, int n_threads, int passes) {
  const size_t n = size_t(mib) * (1u << 20) / sizeof(uint64_t);
  std::vector<uint64_t> buf(n);
  for (size_t i = 0; i < n; ++i) buf[i] = i * 0x9E3779B97F4A7C15ull;  // touch every page
  volatile uint64_t sink = 0;
  double best = 0.0;
  for (int pass = 0; pass < passes; ++pass) {
    std::vector<uint64_t> sums(size_t(n_threads), 0);
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < n_threads; ++t) {
      threads.emplace_back([&, t] {
        const size_t i0 = n * size_t(t) / size_t(n_threads), i1 = n * size_t(t + 1) / size_t(n_threads);
        uint64_t a = 0, b = 0, c = 0, d = 0;
        size_t i = i0;
        for (; i + 4 <= i1; i += 4) {
          a += buf[i];
          b += buf[i + 1];
          c += buf[i + 2];
          d += buf[i + 3];
        }
        for (; i < i1; ++i) a += buf[i];
        sums[size_t(t)] = a + b + c + d;
      });
    }
    for (auto& th : threads) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (uint64_t v : sums) sink = sink + v;
    best = std::max(best, double(n * sizeof(uint64_t)) / s);
  }
  (void)sink;
  return {best, int64_t(n * sizeof(uint64_t)), passes};
}

// Elements of the linear layers (attention and FFN projections): each multiplies every
// prompt token, 2 FLOPs per element per token.
int64_t linear_weight_elements(const StoragePlan& plan) {
  int64_t total = 0;
  for (const StoragePlanRow& r : plan.rows) {
    if (r.role == WeightRole::kLinear && r.op == WeightOp::kMatmul) total += r.elements;
  }
  return total;
}

// Weight bytes one decode step reads: every matmul weight in full (its decode copy when the
// plan made one); an embedding lookup reads one row; norms and biases (F32 vectors) in full.
int64_t weight_bytes_per_token(const StoragePlan& plan, int64_t n_vocab) {
  int64_t total = 0;
  for (const StoragePlanRow& r : plan.rows) {
    total += r.role == WeightRole::kEmbedding && n_vocab > 0 ? r.bytes / n_vocab : r.decode_bytes;
  }
  return total;
}

void run_bench(const BenchArgs& a) {
  if (a.n_prompt < 1) fail("imp bench: -p must be ≥ 1 (got {})", a.n_prompt);
  if (a.n_gen < 1) fail("imp bench: -n must be ≥ 1 (got {})", a.n_gen);
  if (a.bw_mib < 512) fail("imp bench: --bw-mib must be ≥ 512 so the buffer dwarfs the caches (got {})", a.bw_mib);
  // Load time: opening the file through a model ready on the backend (weights planned,
  // converted, uploaded; the KV cache allocated) — with the page cache as the OS left it.
  const auto load_start = std::chrono::steady_clock::now();
  const auto file = open_model_file(a.model);
  const CpuOpsPath path = a.ops == "fast"        ? CpuOpsPath::kFast
                          : a.ops == "reference" ? CpuOpsPath::kReference
                                                 : (fail("--ops: '{}' is not fast or reference", a.ops), CpuOpsPath::kFast);
  const KvType kv_type = parse_kv_type(a.kv_type);
  const DeviceCaps caps = device_caps(a.device);
  require_kv_type(caps, kv_type, file->config.head_dim);
  const PlanPolicy policy = a.plan_opts.policy(parse_act_quant(a.act_quant));
  const StoragePlan plan = plan_storage(*file, caps, policy);
  const int64_t n_ctx = a.n_prompt + a.n_gen;
  check_device_memory(a.device, plan, file->config, n_ctx, kv_type, a.n_prompt);
  std::unique_ptr<Backend> backend_ptr = make_backend(a.device, path, a.threads, plan.act_quant, a.gemm);
  Backend& backend = *backend_ptr;
  auto* cpu = dynamic_cast<CpuBackend*>(&backend);
  // Before anything runs: kernels captured into a graph are recorded only if tracing was on
  // when the graph was made. The timed numbers below are then measured under tracing.
  if (a.trace_steps > 0) backend.start_kernel_trace();
  const std::unique_ptr<Model> model_ptr = create_model(*file, plan, backend);
  Model& model = *model_ptr;
  if (n_ctx > model.n_ctx()) fail("imp bench: -p {} + -n {} exceed the model's context {}", a.n_prompt, a.n_gen, model.n_ctx());
  std::unique_ptr<KvStore> kv = backend.create_kv_cache(model.kv_config(n_ctx, kv_type));
  const double load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();

  std::mt19937_64 rng(uint64_t(a.seed));
  std::uniform_int_distribution<int32_t> pick(0, int32_t(model.n_vocab() - 1));
  std::vector<int32_t> prompt(size_t(a.n_prompt));
  for (auto& t : prompt) t = pick(rng);
  GenerateParams gp;
  gp.n_predict = a.n_gen;
  gp.sampling.temperature = 0.0f;
  gp.sampling.seed = uint64_t(a.seed);
  // CUDA: one untimed run of the same prompt and two decode steps first (as llama-bench
  // warms up): the first launches pay for module loading, cuBLAS setup and scratch
  // allocation, which are not prefill or decode speed.
  const bool warmup = !cpu_device(a.device);
  if (warmup) {
    // The warm-up uses the bench's cache, which is then replaced by a fresh one (one cache at
    // a time: the memory check above counted one).
    GenerateParams wp = gp;
    wp.n_predict = std::min<int64_t>(a.n_gen, 2);
    (void)generate(model, *kv, prompt, wp, nullptr);
    kv.reset();
    kv = backend.create_kv_cache(model.kv_config(n_ctx, kv_type));
  }
  const GenerateResult r = generate(model, *kv, prompt, gp, nullptr);

  // CPU: threaded streaming reads of host memory. CUDA: device copy bandwidth (bytes read +
  // written per second, 1 GiB buffer, median of several copies: backends/cuda/device.h).
  const int n_threads = cpu ? cpu->n_threads() : 0;
  const Bandwidth bw = cpu ? measure_read_bandwidth(a.bw_mib, n_threads, 5)
                           : Bandwidth{cuda_copy_bandwidth(), int64_t(1) << 30, 1};
  const ModelConfig& c = model.config();
  const int64_t w_bytes = weight_bytes_per_token(plan, model.n_vocab());
  const double mean_ctx = double(a.n_prompt) + double(r.decode_steps - 1) / 2.0;
  const double kv_bytes = 2.0 * double(c.n_layer) * double(c.n_head_kv) * double(kv_row_bytes(kv_type, c.head_dim)) *
                          (mean_ctx + 1.0);  // a step also reads the row it just wrote
  const double bytes_per_token = double(w_bytes) + kv_bytes;
  const double ceiling = bw.bytes_per_s / bytes_per_token;
  const double pp_tps = double(r.n_prompt) / r.prompt_seconds;
  // CUDA: the matrix-unit ceilings, measured after the timed run (0.4 GiB of scratch).
  const MatrixRateResult rates = cpu ? MatrixRateResult{} : cuda_matrix_rates();
  const int64_t linear_elems = linear_weight_elements(plan);
  const double prefill_tflops = 2.0 * double(linear_elems) * double(r.n_prompt) / r.prompt_seconds / 1e12;
  const double tg_tps = r.decode_steps > 0 ? double(r.decode_steps) / r.decode_seconds : 0.0;
  // CUDA: the device time of one decode step alone (its graph replayed 50 times); the rest
  // of the wall time per token is host work (forward walk, sampling) and launch latency.
  const double step_gpu_s = backend.replay_decode_step_seconds(50);
  const KernelTrace trace = a.trace_steps > 0 ? backend.trace_decode_step(a.trace_steps) : KernelTrace{};
  // And one prefill of the same prompt on a fresh cache (every stream: the dequantization
  // runs beside the GEMMs).
  KernelTrace prefill_trace;
  if (a.trace_steps > 0) {
    kv.reset();
    kv = backend.create_kv_cache(model.kv_config(n_ctx, kv_type));
    GenerateParams pp = gp;
    pp.n_predict = 1;
    const uint64_t mark = backend.kernel_trace_mark();
    (void)generate(model, *kv, prompt, pp, nullptr);
    prefill_trace = backend.kernel_trace_since(mark, 1);
  }

  nlohmann::ordered_json j;
  j["model"] = a.model;
  j["kv_type"] = kv_type_name(kv_type);
  j["ops"] = a.ops;
  j["act_quant"] = cpu ? std::string(act_quant_name(cpu->act_quant()))
                      : plan.act_quant == ActQuant::kNone ? "f32"
                      : plan.act_quant == ActQuant::kQ8   ? "int8"
                                                          : "f16";
  j["warmup"] = warmup;
  j["load_seconds"] = load_seconds;
  j["storage"] = a.plan_opts.storage;
  j["decode_cache"] = a.plan_opts.decode_cache;
  j["nvfp4_lm_head"] = a.plan_opts.nvfp4_lm_head;
  j["device"] = backend.name();
  j["backend_stats"] = backend.stats();
  j["isa"] = cpu ? cpu_isa_name(cpu->isa()) : "";
  j["threads"] = n_threads;
  j["n_prompt"] = r.n_prompt;
  j["prompt_seconds"] = r.prompt_seconds;
  j["prompt_tokens_per_s"] = pp_tps;
  j["n_generated"] = int64_t(r.tokens.size());
  j["decode_steps"] = r.decode_steps;
  j["decode_seconds"] = r.decode_seconds;
  j["gen_tokens_per_s"] = tg_tps;
  j["decode_step_gpu_seconds"] = step_gpu_s;
  j["decode_gpu_fraction_of_ceiling"] = step_gpu_s > 0 ? 1.0 / step_gpu_s / ceiling : 0.0;
  j["linear_weight_elements"] = linear_elems;
  j["prefill_tflops"] = prefill_tflops;
  if (!cpu) {
    j["matrix_rate_gemm"] = fmt::format("{0}x{0}x{0}", rates.n);
    j["bf16_matrix_tflops"] = rates.bf16_tflops;
    j["fp8_matrix_tflops"] = rates.fp8_tflops;
    j["prefill_fraction_of_bf16_rate"] = rates.bf16_tflops > 0 ? prefill_tflops / rates.bf16_tflops : 0.0;
    j["prefill_fraction_of_fp8_rate"] = rates.fp8_tflops > 0 ? prefill_tflops / rates.fp8_tflops : 0.0;
  }
  j["bandwidth_bytes_per_s"] = bw.bytes_per_s;
  j["bandwidth_gib_per_s"] = bw.bytes_per_s / double(1ull << 30);
  j["bandwidth_buffer_bytes"] = bw.buffer_bytes;
  j["bandwidth_passes"] = bw.passes;
  j["weight_bytes_per_token"] = w_bytes;
  j["mean_context"] = mean_ctx;
  j["kv_bytes_per_token"] = kv_bytes;
  j["bytes_per_token"] = bytes_per_token;
  j["decode_ceiling_tokens_per_s"] = ceiling;
  j["fraction_of_ceiling"] = tg_tps / ceiling;
  const ProcessMemory mem = process_memory();
  const WeightResidency res = weight_residency(plan);
  j["peak_rss_bytes"] = mem.peak_rss_bytes;
  j["weight_bytes_mapped"] = res.mapped_bytes;
  j["weight_bytes_owned"] = res.owned_bytes;
  if (a.trace_steps > 0) {
    j["trace_steps"] = trace.steps;
    j["trace_step_us"] = trace.window_us / trace.steps;
    j["trace_idle_us_per_step"] = trace.idle_us / trace.steps;
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    for (const KernelTraceRow& r : trace.rows) {
      rows.push_back({{"kernel", r.kernel},
                      {"launches_per_step", double(r.launches) / trace.steps},
                      {"advance_us_per_step", r.advance_us / trace.steps},
                      {"duration_us_per_step", r.duration_us / trace.steps}});
    }
    j["trace_kernels"] = rows;
    nlohmann::ordered_json prows = nlohmann::ordered_json::array();
    for (const KernelTraceRow& r : prefill_trace.rows) {
      prows.push_back({{"kernel", r.kernel},
                       {"launches", r.launches},
                       {"advance_us", r.advance_us},
                       {"duration_us", r.duration_us}});
    }
    j["trace_prefill_us"] = prefill_trace.window_us;
    j["trace_prefill_idle_us"] = prefill_trace.idle_us;
    j["trace_prefill_kernels"] = prows;
  }
  if (a.json) {
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("model      {}\n", a.model);
  fmt::print("setup      {}, {} ops, {} activations, {} threads, kv {}, storage {}\n", backend.name(), a.ops,
             j["act_quant"].get<std::string>(), n_threads,
             kv_type_name(kv_type), a.plan_opts.storage);
  if (!backend.stats().empty()) fmt::print("backend    {}\n", backend.stats());
  fmt::print("load       {:.2f} s (open, plan, convert and upload the weights, allocate the KV cache)\n", load_seconds);
  fmt::print("prompt     {} tokens in {:.3f} s: {:.1f} tokens/s\n", r.n_prompt, r.prompt_seconds, pp_tps);
  if (!cpu && rates.bf16_tflops > 0) {
    fmt::print("matrix     {:.1f} TFLOP/s in the linear layers = {:.3f} of the bf16 rate ({:.0f} TFLOP/s), {:.3f} of "
               "the fp8 rate ({:.0f} TFLOP/s; cuBLASLt {}³)\n",
               prefill_tflops, prefill_tflops / rates.bf16_tflops, rates.bf16_tflops,
               rates.fp8_tflops > 0 ? prefill_tflops / rates.fp8_tflops : 0.0, rates.fp8_tflops, rates.n);
  }
  fmt::print("generation {} steps in {:.3f} s: {:.2f} tokens/s\n", r.decode_steps, r.decode_seconds, tg_tps);
  if (step_gpu_s > 0 && tg_tps > 0) {
    fmt::print("step       {:.3f} ms on the device (decode graph replayed alone) of {:.3f} ms per token; {:.1f} % of the "
               "ceiling without the host\n",
               step_gpu_s * 1e3, 1e3 / tg_tps, 100.0 / step_gpu_s / ceiling);
  }
  fmt::print("bandwidth  {:.2f} GiB/s ({}, {} MiB)\n", bw.bytes_per_s / double(1ull << 30),
             cpu ? fmt::format("read, {} threads, best of {}", n_threads, bw.passes) : std::string("device copy, read+write"),
             bw.buffer_bytes >> 20);
  fmt::print("per token  {:.2f} MiB weights + {:.2f} MiB KV at mean context {:.1f}\n", double(w_bytes) / double(1 << 20),
             kv_bytes / double(1 << 20), mean_ctx);
  fmt::print("ceiling    {:.2f} tokens/s; reached {:.1f} %\n", ceiling, 100.0 * tg_tps / ceiling);
  fmt::print("memory     {}\n", memory_summary(plan));
  if (a.trace_steps > 0) {
    fmt::print("\n{}", format_kernel_trace(trace, "decode step"));
    fmt::print("\n{}", format_kernel_trace(prefill_trace, fmt::format("prefill of {} tokens", prompt.size())));
  }
}

}  // namespace

void register_bench_command(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  auto* cmd = app.add_subcommand("bench", "Measure prompt and generation speed against the memory-bandwidth ceiling");
  cmd->add_option("-m,--model", a->model, "GGUF file")->required();
  cmd->add_option("-p,--n-prompt", a->n_prompt, "Prompt tokens (random valid ids)");
  cmd->add_option("-n,--n-gen", a->n_gen, "Tokens to generate");
  cmd->add_option("-t,--threads", a->threads, "CPU threads (default: all hardware threads)");
  cmd->add_option("--kv-type,--kv-dtype", a->kv_type, "KV cache type: f32, f16, bf16, fp8_e4m3, int8, int4, nvfp4");
  cmd->add_option("--ops", a->ops, "CPU op path: fast, reference");
  cmd->add_option("--act-quant", a->act_quant, "Fast-path matmul activations: i16 (default; CUDA: f16 x, tensor-core GEMVs), f32, q8");
  a->plan_opts.add_to(cmd);
  cmd->add_option("--device", a->device, "Backend: cpu (default) or cuda");
  cmd->add_option("--gemm", a->gemm, "CUDA prefill GEMM precision: bf16 (default) or f32");
  cmd->add_option("--bw-mib", a->bw_mib, "Bandwidth test buffer in MiB (≥ 512)");
  cmd->add_option("--seed", a->seed, "Seed for the random prompt");
  cmd->add_flag("--json", a->json, "Print every number as one JSON object");
  cmd->add_option("--trace-kernels", a->trace_steps,
                  "CUDA: replay N decode steps and one prefill under CUPTI and print where their time goes, kernel by "
                  "kernel (needs libcupti; the run's other numbers are then measured under tracing)")
      ->check(CLI::Range(1, 1000));
  cmd->callback([a] { run_bench(*a); });
}

}  // namespace imp
