#include "tools/memory_report.h"

#include <fmt/core.h>

#include <fstream>
#include <sstream>

namespace imp {

ProcessMemory process_memory() {
  ProcessMemory m;
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    // "VmHWM:	  123456 kB"
    const auto read_kb = [&](const char* key, int64_t& out) {
      if (line.rfind(key, 0) != 0) return;
      std::istringstream s(line.substr(std::string(key).size()));
      int64_t kb = 0;
      std::string unit;
      if (s >> kb >> unit && unit == "kB") out = kb * 1024;
    };
    read_kb("VmHWM:", m.peak_rss_bytes);
    read_kb("VmRSS:", m.rss_bytes);
  }
  return m;
}

WeightResidency weight_residency(const StoragePlan& plan) {
  WeightResidency w;
  for (const StoragePlanRow& r : plan.rows) {
    if (r.tier == StorageTier::kMapped) {
      w.mapped_bytes += r.bytes;
      ++w.mapped_tensors;
    } else {
      w.owned_bytes += r.bytes;
      ++w.owned_tensors;
    }
  }
  return w;
}

std::string memory_summary(const StoragePlan& plan) {
  const ProcessMemory m = process_memory();
  const WeightResidency w = weight_residency(plan);
  constexpr double kMiB = 1024.0 * 1024.0;
  const std::string rss = m.peak_rss_bytes >= 0
                              ? fmt::format("peak RSS {:.1f} MiB (now {:.1f} MiB)", double(m.peak_rss_bytes) / kMiB,
                                            double(m.rss_bytes) / kMiB)
                              : std::string("peak RSS unknown (no /proc/self/status)");
  return fmt::format("{} | weights: {:.1f} MiB mapped ({} tensors), {:.1f} MiB owned ({})", rss,
                     double(w.mapped_bytes) / kMiB, w.mapped_tensors, double(w.owned_bytes) / kMiB, w.owned_tensors);
}

}  // namespace imp
