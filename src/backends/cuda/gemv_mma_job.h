// What one launch of a tensor-core decode GEMV computes (gemv_mma.cu, gemv_mma_bulk.cu):
// up to 3 matrices sharing x and cols (QKV), each over its own range of tiles; or, with
// swiglu_out, gate and up rows side by side in each tile (16 gate rows, then the same 16
// rows of up) and out = silu(gate·x) · (up·x). Plain C++17 POD, passed by value to the
// kernels; shared by the two files so that the fused entry points in gemv_mma.cu can hand
// a job to either kernel family.
#pragma once

#include <cstdint>

#include "backends/cuda/forward_kernels.h"
#include "backends/cuda/gemv_registry.h"

namespace imp::cuda::detail {

struct MmaJob {
  KernelArgs part[3];
  int64_t first_block[3] = {0, 0, 0};  // first tile (CTA for the register / shared-x kernels) of each part
  int n_parts = 1;
  float* swiglu_out = nullptr;
  const float* norm_gain = nullptr;  // RMS-normalize x first (GemvFusion); shared-x forms only
  float norm_eps = 0.0f;
  // gemv_mma_qkv_rope_kv: parts Q, K, V; RoPE on Q and K, K and V rows into the cache.
  // Part p plays role p + role0 (0 Q, 1 K, 2 V): a V of another format (Q4_K_M's Q6_K)
  // goes in a launch of its own with role0 = 2 after the Q·K launch.
  int rope_kv = 0;
  int role0 = 0;
  RopeArgs rope;
  KvView kv;
  const StepParams* step = nullptr;
  L2Ranges next_weights;  // GemvFusion::next_weights (bulk-copy kernels only)
};

// Numbers the tiles of a job (16·kTiles rows each; a SwiGLU tile is 16 gate rows with the
// same 16 up rows): part i's first tile into first_block[i]. Returns the number of tiles.
inline int64_t assign_tiles(MmaJob& job, int kTiles, bool swiglu) {
  const int64_t rows_per_tile = swiglu ? 16 : 16 * kTiles;
  auto tiles_of = [&](int i) { return (job.part[i].rows + rows_per_tile - 1) / rows_per_tile; };
  if (swiglu) {
    job.first_block[0] = 0;
    job.first_block[1] = tiles_of(0);  // past the last tile: every tile is part 0's
    return tiles_of(0);
  }
  int64_t tiles = 0;
  for (int i = 0; i < job.n_parts; ++i) job.first_block[i] = tiles, tiles += tiles_of(i);
  return tiles;
}

// The bulk-copy kernel family (gemv_mma_bulk.cu): its registry entries (preferred over the
// shared-x form where they can implement), and the fused launches. `swiglu` pairs part 0
// (gate) with part 1 (up). False when the format has no bulk kernel.
std::vector<GemvKernel> mma_bulk_gemv_kernels();
bool launch_mma_bulk(FormatId format, MmaJob job, bool swiglu, cudaStream_t stream);

}  // namespace imp::cuda::detail
