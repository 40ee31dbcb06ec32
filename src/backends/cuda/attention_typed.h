// The compact decode attention kernel (attention_typed.cu): the tile algorithm of
// attention.cu's kernel, compiled once per KV type, with short loops instead of unrolled
// straight-line code. Why: the decode attention kernel runs once per layer from a cold
// instruction cache, with one warp per scheduler; Nsight Compute on llama3.2-1b decode
// (2026-12-03) showed 60 % of its stall cycles waiting on instruction fetch, 17 cycles per
// issued instruction and 37.7 µs for 16 blocks of one tile each. The generic kernel is
// 6.5k SASS instructions with the KV-type switch inside its loops; this one is 1.6k–2.8k
// per type (hardware f16 / E4M3 widening, loops rolled).
// IMP_CUDA_ATTN=typed selects it (not yet measured against the generic kernel on a GPU);
// same partials, same combine kernel.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "backends/cuda/forward_kernels.h"

namespace imp::cuda {

// Launches the typed attention kernel: grid (n_kv_head · subgroups, n_split, n_tok), writes
// out (n_split == 1) or the partials (attention_decode's layout). Arguments checked by
// attention_decode.
void launch_attention_typed(const float* q, int64_t n_tok, int64_t n_head, KvView kv, int window, float scale,
                            int32_t n_split, float* partials, float* out, const StepParams* step, cudaStream_t stream);

// Whether attention_decode runs the typed kernel: IMP_CUDA_ATTN=typed, or set by tests.
bool attention_typed_enabled();
void set_attention_typed(bool on);

}  // namespace imp::cuda
