// The decode attention kernel (attention_decode_kernel.cu), launched by attention_decode
// (attention.cu): one instantiation per KV type, short rolled loops.
// Why per type: the kernel runs once per layer from a cold instruction cache with one warp
// per scheduler; Nsight Compute on llama3.2-1b decode (2026-12-03) showed 60 % of the stall
// cycles of the generic kernel (6.5k SASS instructions, the KV-type switch inside its loops)
// waiting on instruction fetch. Per type it is 1.6k–2.8k instructions; on an H100
// (2026-12-07, imp_bench_cuda_attention) it took 13.5 against 18.6 µs per layer at 512
// keys, and the Q4_0 8B decode step went 3.05 → 2.79 ms.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "backends/cuda/forward_kernels.h"
#include "backends/cuda/l2_prefetch.h"

namespace imp::cuda {

// Whether the kernel prefetches its split's K and V rows into L2 before its PDL wait:
// IMP_CUDA_ATTN_PREFETCH (default on; set_attention_prefetch for benchmarks).
bool attention_prefetch_enabled();
void set_attention_prefetch(bool on);

// Launches the kernel: grid (n_kv_head · subgroups, n_split, n_tok). Writes out directly when
// n_split == 1, else the partials (attention_decode's layout) for combine_kernel. Arguments
// checked by attention_decode. next_weights: prefetched into L2 before the PDL wait.
void launch_attention_decode_kernel(const float* q, int64_t n_tok, int64_t n_head, KvView kv, int window, float scale,
                                    int32_t n_split, float* partials, float* out, const StepParams* step,
                                    cudaStream_t stream, const L2Ranges& next_weights);

// The one-launch kernel (attention_decode_wide.cu): the same grid, arguments and outputs, a
// split of up to 512 keys walked by 16 warps in parallel and merged in shared memory.
// Opt-in until measured: IMP_CUDA_ATTN_WIDE=1, or set_attention_wide (process-wide; the
// backend picks its split count from attention_decode_keys_per_split at each step).
bool attention_wide_enabled();
void set_attention_wide(bool on);
// Keys per split the backend aims at: 32 (split kernel) or 512 (wide kernel).
int attention_decode_keys_per_split();
void launch_attention_decode_wide(const float* q, int64_t n_tok, int64_t n_head, KvView kv, int window, float scale,
                                  int32_t n_split, float* partials, float* out, const StepParams* step,
                                  cudaStream_t stream, const L2Ranges& next_weights);

}  // namespace imp::cuda
