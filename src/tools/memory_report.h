// Resident memory of this process (/proc/self/status: VmHWM = peak resident set, VmRSS =
// current) and where the planned weights live: memory-mapped from the file (tier kMapped,
// pages shared with the page cache, counted in RSS only once touched) or owned
// (converted at load to f32/bf16, heap). `imp run` and `imp bench` print it at the end.
#pragma once

#include <cstdint>
#include <string>

#include "planner/storage_plan.h"

namespace imp {

struct ProcessMemory {
  int64_t peak_rss_bytes = -1;  // VmHWM; -1 where /proc is unavailable
  int64_t rss_bytes = -1;       // VmRSS
};
ProcessMemory process_memory();

struct WeightResidency {
  int64_t mapped_bytes = 0, owned_bytes = 0;
  int64_t mapped_tensors = 0, owned_tensors = 0;
};
WeightResidency weight_residency(const StoragePlan& plan);

// "peak RSS 212.4 MiB (now 200.1 MiB) | weights: 86.1 MiB mapped (272 tensors), 0.0 MiB owned (0)"
std::string memory_summary(const StoragePlan& plan);

}  // namespace imp
