// `imp quant-report -m MODEL --ref REF_MODEL [--json]`
//
// Per weight tensor of MODEL: format, bits/weight (all planes counted) and the error of its
// dequantized weights against REF_MODEL's tensor of the same name, as relative RMSE and
// SNR in dB, worst first (eval/weight_error.h; says why --ref is required). The last line
// gives the totals over every compared tensor.
#include <fmt/core.h>
#include <fmt/ranges.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "eval/weight_error.h"
#include "io/model_file.h"
#include "tools/commands.h"

namespace imp {
namespace {

struct QuantReportArgs {
  std::string model, ref;
  bool json = false;
};

nlohmann::json finite_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

void run_quant_report(const QuantReportArgs& a) {
  if (a.ref.empty())
    fail("imp quant-report: --ref MODEL is required (the weights to measure against: a tensor is error-free "
         "against its own dequantization)");
  const auto model = open_model_file(a.model);
  const auto ref = open_model_file(a.ref);
  const eval::WeightReport rep = eval::compare_weights(*model, *ref);
  if (rep.tensors.empty()) fail("imp quant-report: no tensor of '{}' has a namesake in '{}'", a.model, a.ref);
  const double bpw = rep.elements ? rep.bits / double(rep.elements) : 0.0;
  if (a.json) {
    nlohmann::json tensors = nlohmann::json::array();
    for (const auto& t : rep.tensors)
      tensors.push_back({{"name", t.name}, {"format", t.format}, {"ref_format", t.ref_format}, {"shape", t.shape},
                         {"bits_per_weight", t.bits_per_weight}, {"rel_rmse", finite_or_null(t.rel_rmse)},
                         {"snr_db", finite_or_null(t.snr_db)}});
    const nlohmann::json j = {{"model", a.model}, {"ref", a.ref}, {"tensors", tensors},
                              {"missing_in_ref", rep.missing_in_ref},
                              {"total", {{"bits_per_weight", bpw}, {"rel_rmse", finite_or_null(eval::rel_rmse(rep.total))},
                                         {"snr_db", finite_or_null(eval::snr_db(rep.total))}}}};
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("{:<40} {:<10} {:<10} {:>8} {:>12} {:>9}\n", "tensor", "format", "ref", "bpw", "rel RMSE", "SNR dB");
  for (const auto& t : rep.tensors)
    fmt::print("{:<40} {:<10} {:<10} {:>8.3f} {:>12.4e} {:>9.2f}\n", t.name, t.format, t.ref_format, t.bits_per_weight,
               t.rel_rmse, t.snr_db);
  fmt::print("{:<40} {:<10} {:<10} {:>8.3f} {:>12.4e} {:>9.2f}\n", "total", "", "", bpw, eval::rel_rmse(rep.total),
             eval::snr_db(rep.total));
  if (!rep.missing_in_ref.empty())
    fmt::print("not in the reference: {}\n", fmt::join(rep.missing_in_ref, ", "));
}

}  // namespace

void register_quant_report_command(CLI::App& app) {
  auto a = std::make_shared<QuantReportArgs>();
  auto* cmd = app.add_subcommand("quant-report", "Per-tensor weight error of a model against a reference model");
  cmd->add_option("-m,--model", a->model, "The model to measure (GGUF file or Hugging Face folder)")->required();
  cmd->add_option("--ref", a->ref, "The reference model (e.g. the F16/BF16/F32 original)");
  cmd->add_flag("--json", a->json, "Print one JSON object");
  cmd->callback([a] { run_quant_report(*a); });
}

}  // namespace imp
