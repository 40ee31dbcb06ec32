#include "quant/pipeline.h"

#include <unistd.h>

#include <filesystem>

#include "common/error.h"
#include "formats/traits.h"
#include "quant/pipeline_internal.h"

namespace imp {
namespace {

namespace fs = std::filesystem;

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  return fmt::format("{:.2f} {}", b, units[u]);
}

void remove_quietly(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
}

}  // namespace

std::vector<float> PipelineRun::load(size_t i) const {
  const InputTensor& t = in.tensors[i];
  std::vector<float> x = load_f32(t);
  if (methods) methods->transform(t.gguf_name, x, t.rows(), t.cols());
  return x;
}

OwnedQuantMatrix PipelineRun::quantize(size_t i) {
  const InputTensor& t = in.tensors[i];
  const std::vector<float> x = load(i);
  TensorJob job{t.out_name, x, t.rows(), t.cols(), decisions[i].to, target.group};
  if (decisions[i].to != FormatId::INT4_GROUP) job.group = 0;
  QuantOptions opt;
  opt.method = p.method;
  opt.pool = &pool;
  if (methods) {
    const std::span<const float> imp = methods->importance(t.gguf_name);
    if (int64_t(imp.size()) == t.cols()) opt.importance = imp.data();
    if (p.method == "gptq") opt.gptq = methods->gptq(t.gguf_name, job.format);
  }
  const auto t0 = std::chrono::steady_clock::now();
  OwnedQuantMatrix m = quantize_tensor(job, opt);
  sum.quant_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return m;
}

void PipelineRun::report(size_t i, int64_t bytes_out) {
  const InputTensor& t = in.tensors[i];
  const Decision& d = decisions[i];
  const int64_t n = t.src->elements();
  sum.tensors += 1;
  sum.params += n;
  sum.bytes_in += t.src->bytes();
  sum.bytes_out += bytes_out;
  if (d.fallback) sum.fallbacks += 1;
  if (d.quantize) {
    sum.quantized += 1;
    sum.quantized_params += n;
  }
  done_elements += n;
  if (p.log) {
    fmt::print(p.log, "[{:>4}/{:>4}] {:<44} {:<16} {:>10} -> {:<18} {}\n", i + 1, in.tensors.size(), t.out_name,
               shape_str(t.src->shape), format_name(t.src->format), format_name(d.to),
               d.quantize ? d.reason : "keep: " + d.reason);
  }
  if (p.progress && ::isatty(2)) {
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double frac = total_elements ? double(done_elements) / double(total_elements) : 1.0;
    const double eta = frac > 0 ? el * (1 - frac) / frac : 0;
    const int w = 30, fill = int(frac * w);
    fmt::print(stderr, "\r[{}{}] {:5.1f}% {}/{} tensors, ETA {:.0f} s ", std::string(size_t(fill), '#'),
               std::string(size_t(w - fill), ' '), 100 * frac, i + 1, in.tensors.size(), eta);
    if (i + 1 == in.tensors.size()) fmt::print(stderr, "\n");
  }
}

QuantizeSummary run_quantize(const QuantizeParams& p) {
  const auto start = std::chrono::steady_clock::now();
  if (p.in.empty() || p.out.empty()) fail("quantize: IN and OUT are required");
  if (p.type.empty()) fail("quantize: --type is required; known: {}", target_type_list());
  const QuantTarget target = parse_target(p.type, p.out, p.layout, p.pure);
  if (!quant::known_method(p.method)) fail("quantize: unknown --method '{}' (rtn, imatrix, awq, gptq, smoothquant)", p.method);
  std::error_code ec;
  if (fs::exists(p.out, ec) && !p.force) fail("{}: the output exists; pass --force to replace it", p.out);
  {
    std::error_code e1, e2;
    const auto a = fs::weakly_canonical(p.in, e1), b = fs::weakly_canonical(p.out, e2);
    if (!e1 && !e2 && a == b) fail("{}: OUT must differ from IN", p.out);
  }
  const Overrides ov = Overrides::compile(p.keep, p.quantize);

  QuantInput in = open_quant_input(p.in, target.kind);
  if (in.tensors.empty()) fail("{}: no tensors to quantize", p.in);
  const std::vector<Decision> decisions = decide(in, target, ov);

  quant::MethodParams mp;
  mp.method = p.method;
  mp.calib = p.calib;
  mp.imatrix = p.imatrix;
  mp.ctx = p.ctx;
  mp.chunks = p.calib_chunks;
  mp.act_order = p.act_order;
  mp.awq_target = p.awq_target;
  mp.threads = p.threads;
  const std::unique_ptr<quant::MethodContext> methods = quant::MethodContext::prepare(mp, p.in, in, decisions, p.log);

  ThreadPool pool(p.threads);
  QuantizeSummary sum;
  sum.threads = pool.size();
  PipelineRun run{p, in, target, decisions, pool, sum, fmt::format("{}.tmp-{}", p.out, ::getpid()), {}, start};
  run.methods = methods.get();
  for (const auto& t : in.tensors) run.total_elements += t.src->elements();
  if (p.log) {
    fmt::print(p.log, "quantize {} ({}, {}) -> {} as {} ({}), method {}, {} threads\n", p.in, in.model->container,
               in.model->quant_scheme, p.out, target.type,
               target.kind == OutputKind::kGguf ? "GGUF" : "safetensors folder", p.method, pool.size());
    for (const auto& w : in.warnings) fmt::print(p.log, "warning: {}\n", w);
  }
  remove_quietly(run.tmp);
  try {
    if (target.kind == OutputKind::kGguf) {
      write_gguf_output(run);
    } else {
      write_st_output(run);
    }
    if (fs::exists(p.out, ec)) fs::remove_all(p.out);
    fs::rename(run.tmp, p.out);
  } catch (...) {
    remove_quietly(run.tmp);
    throw;
  }
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (p.log) {
    const double qsec = sum.quant_seconds > 0 ? sum.quant_seconds : 1e-9;
    fmt::print(p.log,
               "done: {} tensors ({} quantized), {} params; {} -> {} ({:.3f} -> {:.3f} bits/weight); {:.2f} s; "
               "quantize {:.3g} params/s on {} threads ({:.3g} params/s/thread)\n",
               sum.tensors, sum.quantized, sum.params, human_bytes(double(sum.bytes_in)),
               human_bytes(double(sum.bytes_out)), 8.0 * double(sum.bytes_in) / double(sum.params),
               8.0 * double(sum.bytes_out) / double(sum.params), sum.seconds, double(sum.quantized_params) / qsec,
               sum.threads, double(sum.quantized_params) / qsec / sum.threads);
    if (methods) fmt::print(p.log, "method {}: calibration and search {:.2f} s\n", p.method, methods->prepare_seconds);
    if (sum.fallbacks > 0) {
      std::string names;
      int shown = 0;
      for (size_t i = 0; i < in.tensors.size(); ++i) {
        if (!decisions[i].fallback) continue;
        if (shown++ < 3) names += (names.empty() ? "" : ", ") + in.tensors[i].out_name;
      }
      fmt::print(p.log, "fallback: {} tensors have rows {} cannot hold and got the fallback ({}{}); see their lines\n",
                 sum.fallbacks, target.type, names, sum.fallbacks > 3 ? ", …" : "");
    }
    for (const auto& n : run.notes) fmt::print(p.log, "note: {}\n", n);
  }
  return sum;
}

}  // namespace imp
