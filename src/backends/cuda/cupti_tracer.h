// Kernel timestamps from the CUPTI activity API, for `imp bench --trace-kernels`
// (runtime/kernel_trace.h turns them into the per-kernel table).
//
// libcupti is loaded at run time (dlopen; IMP_CUPTI_LIB names the file, else the usual
// names and toolkit paths are tried), so imp runs where CUPTI is absent and only a trace
// request fails — with an error that names what it looked for. Tracing is process-wide
// (CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, which keeps kernels concurrent) and must start
// before the kernels of interest are captured into CUDA graphs: graph kernels are then
// recorded at each replay.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/kernel_trace.h"

namespace imp::cuda {

// Starts kernel tracing (idempotent). Fails when libcupti cannot be loaded or refuses.
void cupti_start();
bool cupti_active();
// The CUPTI clock (the kernels' timestamps are on it), in ns.
uint64_t cupti_now_ns();
// Flushes CUPTI's buffers and returns the kernels recorded so far that started at or after
// t0 and ended at or before t1 (all of them when t1 == 0), names demangled; drops them
// from the store.
std::vector<KernelSpan> cupti_take(uint64_t t0, uint64_t t1);

}  // namespace imp::cuda
