// Programmatic dependent launch (Hopper): a kernel launched with launch_pdl() may start
// while the kernel before it in the stream is still running. It must call pdl_wait()
// before it reads anything an earlier kernel wrote, or writes anything an earlier kernel
// may still read; what it does before (address arithmetic, loads of constant weights) then
// overlaps the previous kernel's tail, and its launch latency is hidden. pdl_trigger() in
// the previous kernel lets the dependent's CTAs be scheduled before that kernel's CTAs
// exit. Waiting is transitive: every PDL kernel waits for its predecessor's completion,
// which waited for its own. A kernel launched without the attribute runs in plain stream
// order, and pdl_wait() in it returns at once.
//
// Why: a decode step is ~230 short kernels; the gap between two dependent launches
// (drain, launch, ramp) costs ~2–3 µs each on an H200, comparable to a 4096×4096 GEMV.
// IMP_CUDA_PDL=0 launches without the attribute (for measurements).
#pragma once

#include <cuda_runtime.h>

#include <utility>

#include "backends/cuda/check.h"
#include "common/env_switch.h"

namespace imp::cuda {

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

inline bool& pdl_flag() {
  static bool on = env_switch_on("IMP_CUDA_PDL");
  return on;
}
inline bool pdl_enabled() { return pdl_flag(); }
// Benchmarks: launches captured after this call carry the attribute or not (the GEMV bench
// times each kernel alone and in a PDL stream, as a decode step runs them).
inline void set_pdl_enabled(bool on) { pdl_flag() = on; }

// kernel<<<grid, block, smem, stream>>>(args...) with programmatic stream serialization.
template <class... KArgs, class... Args>
void launch_pdl(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, Args&&... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = pdl_enabled() ? 1 : 0;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  IMP_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...));
}

}  // namespace imp::cuda
