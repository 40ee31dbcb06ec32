// Where a decode step's device time goes, kernel by kernel (`imp bench --trace-kernels`).
//
// A backend that can trace (CUDA: the CUPTI activity API, backends/cuda/cupti_tracer.h)
// hands over the kernels that ran in a window — their names and start/end timestamps — and
// summarize_kernel_trace() turns them into a per-kernel table whose times add up to the
// window.
//
// Why not per-kernel durations: under programmatic dependent launch a kernel starts (its
// CTAs resident, waiting in griddepcontrol.wait) while the one before it still runs, so
// durations overlap and their sum exceeds the step. Instead each kernel is charged the time
// by which it advanced the timeline: kernels sorted by end time, kernel i gets
// end_i − max(end_{i−1}, window start). These charges sum to the window exactly, a launch gap
// is charged to the kernel after it, and idle (no kernel running at all) is reported apart.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace imp {

struct KernelSpan {
  std::string name;   // demangled (or as the tracer gave it)
  uint64_t start_ns;  // device timestamps, one clock for the whole trace
  uint64_t end_ns;
};

struct KernelTraceRow {
  std::string kernel;     // short_kernel_name()
  int64_t launches = 0;   // over the whole trace
  double advance_us = 0;  // Σ of the timeline advances charged to it (see above)
  double duration_us = 0; // Σ of end − start (overlaps included)
};

struct KernelTrace {
  int steps = 0;          // decode steps in the window (the numbers below are totals)
  double window_us = 0;   // first kernel start → last kernel end
  double idle_us = 0;     // window time with no kernel running
  int64_t launches = 0;
  std::vector<KernelTraceRow> rows;  // by advance_us, largest first
};

// Namespaces, parameter lists and return types dropped: "gemv_mma_bulk_kernel<Q4_0Mma, 1,
// false>" for imp::cuda::detail::(anonymous namespace)::gemv_mma_bulk_kernel<…>(…).
std::string short_kernel_name(std::string_view demangled);

// spans: any order; empty → an empty trace. steps ≥ 1.
KernelTrace summarize_kernel_trace(std::vector<KernelSpan> spans, int steps);

// The table `imp bench --trace-kernels` prints: per step, the top `max_rows` kernels by
// advance, the rest summed in one line, then idle and the step total.
std::string format_kernel_trace(const KernelTrace& t, std::string_view title, int max_rows = 24);

}  // namespace imp
