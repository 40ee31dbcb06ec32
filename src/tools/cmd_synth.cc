// `imp synth --preset NAME --type T -o OUT [--seed S] [--layers N] [--container C]`: a model
// with random weights and the exact shapes of a real one (quant/synth_model.h), for
// benchmarks and GPU tests on machines that cannot download 8B models, and for sizing
// hardware. GGUF types write one .gguf file; nvfp4 / fp8 write a ModelOpt-layout
// safetensors folder (bf16 too with --container safetensors).
#include <fmt/core.h>

#include <chrono>
#include <cstdio>

#include "common/error.h"
#include "formats/traits.h"
#include "quant/synth_model.h"
#include "tools/commands.h"

namespace imp {
namespace {

struct SynthArgs {
  std::string preset, type = "q4_k", out, container = "auto";
  uint64_t seed = 0;
  int64_t layers = 0;
  int threads = 0;
  bool quiet = false;
};

void run_synth(const SynthArgs& a) {
  SynthOptions o;
  o.preset = a.preset;
  o.container = a.container == "auto"          ? default_synth_container(a.type)
                : a.container == "gguf"        ? SynthContainer::kGguf
                : a.container == "safetensors" ? SynthContainer::kSafetensors
                                               : (fail("--container: '{}' is not auto, gguf or safetensors", a.container),
                                                  SynthContainer::kGguf);
  o.type = synth_type_from_name(a.type, o.container);
  o.mix = synth_mix_from_name(a.type);
  o.out = a.out;
  o.seed = a.seed;
  o.layers = a.layers;
  o.threads = a.threads;
  if (!a.quiet) {
    o.progress = [](const std::string& line) {
      fmt::print(stderr, "{}\n", line);
      std::fflush(stderr);
    };
  }
  const auto t0 = std::chrono::steady_clock::now();
  const SynthSummary s = synth_model(o);
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("wrote {} ({} tensors, {:.1f} MiB of weights, {} {}) in {:.1f} s\n", s.path, s.n_tensors,
             double(s.bytes) / (1024.0 * 1024.0), a.preset, o.mix.empty() ? std::string(format_name(o.type)) : o.mix, sec);
}

}  // namespace

void register_synth_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("synth", "Write a random-weight model with the shapes of a real one");
  static SynthArgs a;
  cmd->add_option("--preset", a.preset, "llama3.1-8b, llama3.2-1b, qwen3-8b or tiny")->required();
  cmd->add_option("--type", a.type, "weight type: a GGUF type (q4_k, q8_0, bf16, …), a llama.cpp mix (q4_k_m, q5_k_s, …), nvfp4 or fp8")->capture_default_str();
  cmd->add_option("-o,--output", a.out, "output .gguf file, or folder for safetensors")->required();
  cmd->add_option("--seed", a.seed, "random seed")->capture_default_str();
  cmd->add_option("--layers", a.layers, "override the preset's layer count");
  cmd->add_option("--container", a.container, "auto, gguf or safetensors")->capture_default_str();
  cmd->add_option("--threads", a.threads, "quantization threads (0 = all)")->capture_default_str();
  cmd->add_flag("-q,--quiet", a.quiet, "no per-tensor progress");
  cmd->callback([] { run_synth(a); });
}

}  // namespace imp
