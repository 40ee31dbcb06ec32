// `imp formats [--check] [--json]`: the formats table, and with --check the self-check:
// every weight format's reference round trip on N(0, 1) data against its SNR bound, and
// every fast CPU kernel against the scalar reference on the same rows.
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "backends/cpu/row_kernels.h"
#include "common/error.h"
#include "formats/quant_matrix.h"
#include "formats/round_trip.h"
#include "formats/traits.h"
#include "tools/commands.h"

namespace imp {
namespace {

std::string_view layout_name(ScaleLayout l) {
  switch (l) {
    case ScaleLayout::kNone: return "none";
    case ScaleLayout::kInBlock: return "in-block";
    case ScaleLayout::kPerBlock: return "per-block";
    case ScaleLayout::kPerGroup: return "per-group";
    case ScaleLayout::kPerRow: return "per-row";
    case ScaleLayout::kPerTensor: return "per-tensor";
    case ScaleLayout::kTile128: return "128x128";
  }
  return "?";
}

bool is_weight_format(const FormatTraits& t) { return t.vec_dot_ref != nullptr; }

// Largest relative difference between the fast dequantizer and the reference on one
// awkward row; dequantization must be bit-exact, so anything but 0 fails.
double fast_dequant_mismatch(FormatId f, const OwnedQuantMatrix& q) {
  const auto k = cpu_row_kernels(f);
  if (k.dequantize_isa == CpuIsa::kScalar) return 0.0;
  const QuantMatrix v = q.view();
  std::vector<float> ref(size_t(q.cols)), fast(size_t(q.cols));
  double worst = 0;
  for (int64_t r = 0; r < q.rows; ++r) {
    format_traits(f).dequantize_ref(row_planes(v, r), ref.data(), q.cols);
    k.dequantize(row_planes(v, r), fast.data(), q.cols);
    for (int64_t i = 0; i < q.cols; ++i) {
      if (std::bit_cast<uint32_t>(ref[i]) != std::bit_cast<uint32_t>(fast[i])) worst = 1.0;
    }
  }
  return worst;
}

void run_formats(bool check, bool json) {
  nlohmann::json rows = nlohmann::json::array();
  int failures = 0;
  if (!json) {
    fmt::print("{:<18} {:>5} {:>6} {:>6} {:>8} {:<10}", "format", "gguf", "block", "bytes", "bits/w", "scales");
    if (check) fmt::print(" {:>9} {:>8} {:>8} {:<6} {}", "rmse", "snr dB", "bound", "dequant", "result");
    fmt::print("\n");
  }
  for (int i = 0; i < kFormatCount; ++i) {
    const auto& t = format_traits(FormatId(i));
    nlohmann::json row = {{"name", t.name},        {"gguf_type", t.gguf_type},   {"block_elems", t.block_elems},
                          {"block_bytes", t.block_bytes}, {"bits_per_weight", t.bits_per_weight},
                          {"scale_layout", layout_name(t.scale_layout)}};
    if (!json) {
      fmt::print("{:<18} {:>5} {:>6} {:>6} {:>8.4g} {:<10}", t.name,
                 t.gguf_type >= 0 ? fmt::format("{}", t.gguf_type) : "-", t.block_elems, t.block_bytes,
                 t.bits_per_weight, layout_name(t.scale_layout));
    }
    if (check && is_weight_format(t)) {
      try {
        const int64_t cols = awkward_row_length(t.id);
        const RoundTripStats s = measure_round_trip(t.id, 3, cols, 0x1234u + uint64_t(i));
        const double bound = min_round_trip_snr_db(t.id);
        std::mt19937_64 rng(7);
        std::normal_distribution<float> normal;
        std::vector<float> x(size_t(3 * cols));
        for (auto& v : x) v = normal(rng);
        const OwnedQuantMatrix q = quantize(t.id, x, 3, cols, t.id == FormatId::INT4_GROUP ? 128 : 0);
        const bool dequant_ok = fast_dequant_mismatch(t.id, q) == 0.0;
        const bool ok = s.snr_db >= bound && dequant_ok;
        failures += ok ? 0 : 1;
        row["rmse"] = s.rmse;
        row["snr_db"] = s.snr_db;
        row["min_snr_db"] = bound;
        row["fast_dequant_bit_exact"] = dequant_ok;
        row["ok"] = ok;
        if (!json) {
          fmt::print(" {:>9.5f} {:>8.2f} {:>8.1f} {:<7} {}", s.rmse, s.snr_db, bound,
                     std::string(cpu_isa_name(cpu_row_kernels(t.id).dequantize_isa)), ok ? "ok" : "FAIL");
        }
      } catch (const Error& e) {
        ++failures;
        row["ok"] = false;
        row["error"] = e.what();
        if (!json) fmt::print(" FAIL: {}", e.what());
      }
    }
    if (!json) fmt::print("\n");
    rows.push_back(row);
  }
  if (json) fmt::print("{}\n", nlohmann::json{{"formats", rows}, {"cpu_isa", cpu_isa_name(best_cpu_isa())}}.dump(2));
  if (check) {
    if (!json) fmt::print("self-check: {} format(s) failed (cpu isa: {})\n", failures, cpu_isa_name(best_cpu_isa()));
    if (failures) fail("formats self-check failed for {} format(s)", failures);
  }
}

}  // namespace

void register_formats_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("formats", "List every numeric format; --check runs the self-check");
  static bool check = false, json = false;
  cmd->add_flag("--check", check, "round-trip every weight format and cross-check the fast CPU kernels");
  cmd->add_flag("--json", json, "machine-readable output");
  cmd->callback([] { run_formats(check, json); });
}

}  // namespace imp
