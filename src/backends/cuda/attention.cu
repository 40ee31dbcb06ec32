// Causal GQA attention over the paged device KV cache (forward_kernels.h): decode (split-K)
// and the exact mode's FP32 prefill.
//
// Block (kv head g, head subgroup, split s, query t), 128 threads. The block serves the
// query heads of one kv head together (GQA: up to kMaxGroup heads), so each K/V row is
// read and decoded once for all of them. Its keys are walked in tiles of kTile = 32:
//   1. rows: 32 threads look up the tile's block-table entries → row pointers (smem);
//   2. load: each thread fetches its quads (4 elements) of the tile's K and V rows into
//      registers with independent (vector, where the type allows) loads, then decodes them
//      to FP32 in shared memory: the tile costs one memory round trip, not one per key;
//   3. scores: warp w takes heads w, w+4, …; lane j scores key j against the head's q
//      (smem), then the warp updates the head's running (max, sum) — online softmax, FP32;
//   4. P·V: thread i owns output elements i, i+128, … of the subgroup's heads, rescales
//      them by the tile's correction and accumulates its 32 keys.
// Why: a warp per key chain (the previous kernel) left each block waiting on a dependent
// load chain per key; a llama3.1-8b decode step spent 1.2 ms of 3.3 in attention at
// 640 tokens (imp bench --trace-kernels, 2026-12-03).
// With one split the block writes acc / l; else (max, sum, acc) partials per head, and the
// last split of (token, kv head, subgroup) to finish merges them (combine_head_warp), counted
// in `counters`. Key counts come from StepParams in device memory, so a captured decode
// graph stays valid as the context grows (within its split count).
#include <cmath>

#include "backends/cuda/check.h"
#include "backends/cuda/forward_kernels.h"
#include "backends/cuda/kv_codec.cuh"
#include "backends/cuda/pdl.cuh"

namespace imp::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kTile = 32;          // keys per tile: one per lane in the score step
constexpr int kMaxGroup = 8;       // query heads per block (larger GQA groups: several subgroups)
constexpr int kMaxHeadDim = 256;
constexpr int kMaxAcc = kMaxGroup * kMaxHeadDim / kThreads;  // output elements per thread
constexpr int kMaxCombineSplits = 128;
constexpr int kBatch = 8;         // quads of K (and of V) a thread has in flight

// Shared memory of one block, in floats after the row pointers: q [group][hd],
// k [kTile][hd + 1] (odd stride: lane j reads row j, conflict-free), v [kTile][hd],
// p [group][kTile], and the running max / sum / tile correction per head.
struct AttnSmem {
  int hd, group;
  __host__ __device__ int k_stride() const { return hd + 1; }
  __host__ __device__ size_t bytes() const {
    return 2 * kTile * sizeof(void*) +
           sizeof(float) * (size_t(group) * hd + kTile * k_stride() + kTile * hd + group * kTile + 3 * group);
  }
};

// The bytes that elements e .. e+3 of a row decode from (e % 4 == 0), fetched with
// independent loads so that a thread's quads of a tile are all in flight at once:
//   f32: 16 B; f16/bf16: 8 B; fp8/int8: 4 B (the row scale comes from the row step);
//   int4: the 2 code bytes and the group's f16 scale; nvfp4: the 2 code bytes and the
//   block's E4M3 scale (the row's F32 scale comes from the row step).
// `vec`: head_dim % 4 == 0, so the vector loads are aligned (row sizes are multiples of 4,
// 8, 16 then). Otherwise (an f32/f16/bf16/fp8/int8 head_dim that is not) nothing is fetched
// and decode_quad reads the elements one by one.
struct RawQuad {
  uint32_t w[4];
};
__device__ __forceinline__ RawQuad load_quad(int32_t dtype, const uint8_t* row, int e, int hd, bool vec) {
  RawQuad r{};
  if (!vec) return r;
  switch (dtype) {
    case kvc::kF32: {
      const uint4 v = __ldg(reinterpret_cast<const uint4*>(row + 4 * e));
      r.w[0] = v.x, r.w[1] = v.y, r.w[2] = v.z, r.w[3] = v.w;
      break;
    }
    case kvc::kF16:
    case kvc::kBF16: {
      const uint2 v = __ldg(reinterpret_cast<const uint2*>(row + 2 * e));
      r.w[0] = v.x, r.w[1] = v.y;
      break;
    }
    case kvc::kFP8:
    case kvc::kINT8: r.w[0] = __ldg(reinterpret_cast<const unsigned*>(row + 4 + e)); break;
    case kvc::kINT4: {
      const uint8_t* codes = row + 2 * kvc::int4_groups(hd) + e / 2;
      const uint8_t* d = row + 2 * (e / kvc::kInt4Group);
      r.w[0] = uint32_t(__ldg(codes)) | (uint32_t(__ldg(codes + 1)) << 8);
      r.w[1] = uint32_t(__ldg(d)) | (uint32_t(__ldg(d + 1)) << 8);
      break;
    }
    case kvc::kNVFP4: {
      const uint8_t* codes = row + 4 + hd / kvc::kNvfp4Block + e / 2;
      r.w[0] = uint32_t(__ldg(codes)) | (uint32_t(__ldg(codes + 1)) << 8);
      r.w[1] = __ldg(row + 4 + e / kvc::kNvfp4Block);
      break;
    }
    default: break;
  }
  return r;
}

// decode_elem's values of elements e .. e+3, bit for bit, from load_quad's bytes. `scale`:
// the row's F32 scale (fp8, int8, nvfp4; unused otherwise).
__device__ __forceinline__ void decode_quad(int32_t dtype, const RawQuad& r, const uint8_t* row, int e, int hd,
                                            float scale, bool vec, float out[4]) {
  if (!vec) {
#pragma unroll
    for (int i = 0; i < 4; ++i) out[i] = e + i < hd ? kvc::decode_elem(dtype, row, e + i, hd, scale) : 0.0f;
    return;
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const uint16_t h16 = uint16_t(r.w[i / 2] >> (16 * (i & 1)));
    const uint8_t b8 = uint8_t(r.w[0] >> (8 * i));
    const uint32_t nib = (r.w[0] >> (4 * i)) & 0xF;
    switch (dtype) {
      case kvc::kF32: out[i] = __uint_as_float(r.w[i]); break;
      case kvc::kF16: out[i] = kvc::f16_to_f32(h16); break;
      case kvc::kBF16: out[i] = kvc::bf16_to_f32(h16); break;
      case kvc::kFP8: out[i] = __fmul_rn(kvc::e4m3_to_f32(b8), scale); break;
      case kvc::kINT8: out[i] = __fmul_rn(float(int8_t(b8)), scale); break;
      case kvc::kINT4: {
        float d = kvc::f16_to_f32(uint16_t(r.w[1]));
        if (!(d > 0.0f)) d = 1.0f;
        out[i] = __fmul_rn(float(int(nib) - 8), d);
        break;
      }
      case kvc::kNVFP4: {
        const float d = __fmul_rn(kvc::e4m3_to_f32(uint8_t(r.w[1])), scale);
        out[i] = __fmul_rn(kvc::e2m1_to_f32(nib), d);
        break;
      }
      default: out[i] = 0.0f;
    }
  }
}

// The row's F32 scale: fp8 and int8 rows (kvc::row_scale) and nvfp4 rows (the global scale).
__device__ __forceinline__ float row_f32_scale(int32_t dtype, const uint8_t* row) {
  return dtype == kvc::kNVFP4 ? kvc::load_f32(row) : kvc::row_scale(dtype, row);
}

// Merges the n_split partials of (query t, head h) into out with one warp. load(p) reads a
// partial. Lane i reads the (max, sum) of splits i, i+32, …; the weights stay in registers
// and reach the other lanes by shuffles, so the element loop is independent loads only.
template <class Load>
__device__ __forceinline__ void combine_head_warp(const float* partials, int n_head, int n_split, int hd, float* out,
                                                  int h, int t, Load load) {
  constexpr int kPerLane = kMaxCombineSplits / 32, kElems = kMaxHeadDim / 32;
  const int lane = threadIdx.x & 31;
  const float* base = partials + (int64_t(t) * n_head + h) * n_split * (hd + 2);
  float w[kPerLane], ls[kPerLane];
  float M = -INFINITY;
#pragma unroll
  for (int k = 0; k < kPerLane; ++k) {
    const int s = lane + 32 * k;
    w[k] = -INFINITY;
    ls[k] = 0.0f;
    if (s < n_split) {
      ls[k] = load(base + s * (hd + 2) + 1);
      if (ls[k] > 0.0f) w[k] = load(base + s * (hd + 2));  // empty splits (no keys) weigh nothing
    }
    M = fmaxf(M, w[k]);
  }
  for (int o = 16; o > 0; o >>= 1) M = fmaxf(M, __shfl_xor_sync(0xFFFFFFFFu, M, o));
  float L = 0.0f;
#pragma unroll
  for (int k = 0; k < kPerLane; ++k) {
    w[k] = w[k] == -INFINITY ? 0.0f : expf(w[k] - M);
    L += ls[k] * w[k];
  }
  for (int o = 16; o > 0; o >>= 1) L += __shfl_xor_sync(0xFFFFFFFFu, L, o);
  float a[kElems];
#pragma unroll
  for (int i = 0; i < kElems; ++i) a[i] = 0.0f;
  for (int s = 0; s < n_split; ++s) {
    float ws = 0.0f;
#pragma unroll
    for (int k = 0; k < kPerLane; ++k) {
      const float v = __shfl_sync(0xFFFFFFFFu, w[k], s & 31);
      if ((s >> 5) == k) ws = v;
    }
    const float* ps = base + s * (hd + 2) + 2;
#pragma unroll
    for (int i = 0; i < kElems; ++i) {
      const int e = lane + 32 * i;
      if (e < hd) a[i] = fmaf(load(ps + e), ws, a[i]);
    }
  }
#pragma unroll
  for (int i = 0; i < kElems; ++i) {
    const int e = lane + 32 * i;
    if (e < hd) out[(int64_t(t) * n_head + h) * hd + e] = L > 0.0f ? a[i] / L : 0.0f;
  }
}

// grid (ceil(n_head / 4), n_tok), 128 threads, a warp per head: the separate combine
// (IMP_CUDA_ATTN_COMBINE=kernel).
__global__ void combine_kernel(const float* partials, int n_head, int n_split, int hd, float* out) {
  pdl_wait();
  pdl_trigger();
  const int h = blockIdx.x * 4 + (threadIdx.x >> 5);
  if (h < n_head) combine_head_warp(partials, n_head, n_split, hd, out, h, blockIdx.y, [](const float* p) { return *p; });
}

// grid (n_kv_head · n_sub, n_split, n_tok); `group` heads per block (the last subgroup of a
// kv head may have fewer: n_head / n_kv_head − sub · group).
__global__ void __launch_bounds__(kThreads) attention_kernel(const float* q, int n_head, KvView kv, int window,
                                                             float scale, int group, float* partials,
                                                             unsigned* counters, float* out, const StepParams* step) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int hd = kv.head_dim, G = n_head / kv.n_kv_head;
  const int n_sub = (G + group - 1) / group;
  const int g = blockIdx.x / n_sub, sub = blockIdx.x % n_sub;
  const int h0 = g * G + sub * group, n_g = min(group, G - sub * group);
  const int s = blockIdx.y, n_split = gridDim.y, t = blockIdx.z;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const AttnSmem L{hd, group};
  const uint8_t** k_rows = reinterpret_cast<const uint8_t**>(smem_raw);
  const uint8_t** v_rows = k_rows + kTile;
  float* q_s = reinterpret_cast<float*>(v_rows + kTile);
  float* k_s = q_s + group * hd;
  float* v_s = k_s + kTile * L.k_stride();
  float* p_s = v_s + kTile * hd;
  float* m_s = p_s + group * kTile;
  float* l_s = m_s + group;
  float* c_s = l_s + group;
  __shared__ float k_scale[kTile], v_scale[kTile];

  // The step's key range: StepParams was written before the step's first kernel.
  const int pos = step->pos0 + t;
  const int lo = window > 0 ? max(0, pos + 1 - window) : 0;
  const int len = pos - lo + 1;
  const int chunk = (len + n_split - 1) / n_split;
  const int j0 = lo + s * chunk, j1 = min(pos + 1, j0 + chunk);

  pdl_wait();  // q and this step's cache rows come from the kernels before (pdl.cuh)
  pdl_trigger();
  for (int i = tid; i < n_g * hd; i += kThreads) q_s[i] = q[(int64_t(t) * n_head + h0) * hd + i];
  if (tid < group) {
    m_s[tid] = -INFINITY;
    l_s[tid] = 0.0f;
  }
  const bool vec = (hd & 3) == 0;
  const int quads = (hd + 3) / 4;
  const int n_out = n_g * hd;
  float acc[kMaxAcc];
#pragma unroll
  for (int r = 0; r < kMaxAcc; ++r) acc[r] = 0.0f;

  for (int base = j0; base < j1; base += kTile) {
    const int n_keys = min(kTile, j1 - base);
    __syncthreads();  // the previous tile's k/v/p are consumed (and q_s, m_s written)
    if (tid < kTile) {
      const uint8_t* kr = nullptr;
      const uint8_t* vr = nullptr;
      if (tid < n_keys) {
        kr = kvc::kv_row_ptr(kv.k_pool, kv.k_table, kv.block_tokens, kv.n_kv_head, kv.row_bytes, base + tid, g);
        vr = kvc::kv_row_ptr(kv.v_pool, kv.v_table, kv.block_tokens, kv.n_kv_head, kv.row_bytes, base + tid, g);
        k_scale[tid] = row_f32_scale(kv.dtype, kr);
        v_scale[tid] = row_f32_scale(kv.dtype, vr);
      }
      k_rows[tid] = kr;
      v_rows[tid] = vr;
    }
    __syncthreads();
    // K and V of the tile, FP32; keys past the tile's end are zeros (p = 0 must not meet NaN).
    // Each thread fetches up to kBatch quads of K and of V before decoding any, so a tile
    // is one memory round trip (two for head_dim 256).
    for (int i0 = 0; i0 < kTile * quads; i0 += kBatch * kThreads) {
      RawQuad rk[kBatch], rv[kBatch];
#pragma unroll
      for (int b = 0; b < kBatch; ++b) {
        const int i = i0 + tid + b * kThreads, j = i / quads, e = (i - j * quads) * 4;
        if (i < kTile * quads && j < n_keys) {
          rk[b] = load_quad(kv.dtype, k_rows[j], e, hd, vec);
          rv[b] = load_quad(kv.dtype, v_rows[j], e, hd, vec);
        }
      }
#pragma unroll
      for (int b = 0; b < kBatch; ++b) {
        const int i = i0 + tid + b * kThreads, j = i / quads, e = (i - j * quads) * 4;
        if (i >= kTile * quads) break;
        float kq[4] = {0.0f, 0.0f, 0.0f, 0.0f}, vq[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        if (j < n_keys) {
          decode_quad(kv.dtype, rk[b], k_rows[j], e, hd, k_scale[j], vec, kq);
          decode_quad(kv.dtype, rv[b], v_rows[j], e, hd, v_scale[j], vec, vq);
        }
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          if (e + c < hd) {
            k_s[j * L.k_stride() + e + c] = kq[c];
            v_s[j * hd + e + c] = vq[c];
          }
        }
      }
    }
    __syncthreads();
    // Scores and the online softmax, one warp per head; lane = key.
    for (int gi = warp; gi < n_g; gi += kWarps) {
      const float* qh = q_s + gi * hd;
      const float* kr = k_s + lane * L.k_stride();
      float dot = 0.0f;
      for (int e = 0; e < hd; ++e) dot = fmaf(qh[e], kr[e], dot);
      const bool valid = lane < n_keys;
      const float sc = valid ? dot * scale : -INFINITY;
      float mt = sc;
      for (int o = 16; o > 0; o >>= 1) mt = fmaxf(mt, __shfl_xor_sync(0xFFFFFFFFu, mt, o));
      const float m_old = m_s[gi];
      const float m_new = fmaxf(m_old, mt);  // finite: the tile has at least one key
      const float p = valid ? expf(sc - m_new) : 0.0f;
      float sum = p;
      for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xFFFFFFFFu, sum, o);
      p_s[gi * kTile + lane] = p;
      __syncwarp();
      if (lane == 0) {
        const float corr = expf(m_old - m_new);  // 0 on the first tile (m_old = −inf)
        c_s[gi] = corr;
        l_s[gi] = l_s[gi] * corr + sum;
        m_s[gi] = m_new;
      }
    }
    __syncthreads();
    // P·V: output element idx = tid + r · 128 of the subgroup (head idx / hd, element idx % hd).
#pragma unroll
    for (int r = 0; r < kMaxAcc; ++r) {
      const int idx = tid + r * kThreads;
      if (idx < n_out) {
        const int gi = idx / hd, e = idx - gi * hd;
        const float* p = p_s + gi * kTile;
        float a = acc[r] * c_s[gi];
#pragma unroll 8
        for (int j = 0; j < kTile; ++j) a = fmaf(p[j], v_s[j * hd + e], a);
        acc[r] = a;
      }
    }
  }
  __syncthreads();  // m_s / l_s final (a block with no keys keeps −inf / 0)

  const int64_t row0 = int64_t(t) * n_head + h0;  // (token, head) row of the subgroup's first head
#pragma unroll
  for (int r = 0; r < kMaxAcc; ++r) {
    const int idx = tid + r * kThreads;
    if (idx < n_out) {
      const int gi = idx / hd, e = idx - gi * hd;
      if (n_split == 1) {
        const float l = l_s[gi];
        out[(row0 + gi) * hd + e] = l > 0.0f ? acc[r] / l : 0.0f;
      } else {
        partials[((row0 + gi) * n_split + s) * (hd + 2) + 2 + e] = acc[r];
      }
    }
  }
  if (n_split == 1) return;
  if (tid < n_g) {
    partials[((row0 + tid) * n_split + s) * (hd + 2)] = m_s[tid];
    partials[((row0 + tid) * n_split + s) * (hd + 2) + 1] = l_s[tid];
  }
  if (!counters) return;  // combine_kernel merges
  // The last split of (t, kv head, subgroup) to finish merges them all (threadFenceReduction):
  // one launch fewer per layer. Its reads skip L1 (__ldcg): other SMs wrote the partials.
  __shared__ bool last;
  __threadfence();
  __syncthreads();
  unsigned* const count = counters + int64_t(t) * gridDim.x + blockIdx.x;
  if (tid == 0) last = atomicAdd(count, 1u) == unsigned(n_split - 1);
  __syncthreads();
  if (!last) return;
  __threadfence();
  for (int gi = warp; gi < n_g; gi += kWarps) {
    combine_head_warp(partials, n_head, n_split, hd, out, h0 + gi, t, [](const float* p) { return __ldcg(p); });
  }
  if (tid == 0) *count = 0;  // zero again for the next step (and graph replay)
}

void check_args(int64_t n_tok, int64_t n_head, const KvView& kv, int32_t n_split, const char* op) {
  if (kv.n_kv_head <= 0 || n_head <= 0 || n_head % kv.n_kv_head != 0) {
    ::imp::fail("CUDA {}: n_head {} is not a multiple of n_kv_head {}", op, n_head, kv.n_kv_head);
  }
  if (kv.head_dim <= 0 || kv.head_dim > kMaxHeadDim) {
    ::imp::fail("CUDA {}: head_dim {} is outside 1..{}", op, kv.head_dim, kMaxHeadDim);
  }
  if (!kv_dtype_supported_on_device(kv.dtype)) ::imp::fail("CUDA {}: KV type {} has no device decoder", op, kv.dtype);
  if (n_tok <= 0 || n_tok > 65535 || n_head > 0x7FFFFFFF || n_split < 1 || n_split > 65535) {
    ::imp::fail("CUDA {}: grid {} heads × {} splits × {} tokens is out of range", op, n_head, n_split, n_tok);
  }
}

}  // namespace

void attention_decode(const float* q, int64_t n_tok, int64_t n_head, KvView kv, int64_t window, float scale,
                      int32_t n_split, float* partials, unsigned* counters, float* out, const StepParams* step,
                      cudaStream_t stream) {
  check_args(n_tok, n_head, kv, n_split, "attention_decode");
  if (n_split > 1 && !partials) ::imp::fail("CUDA attention_decode: {} splits need a partials buffer", n_split);
  if (n_split > kMaxCombineSplits) ::imp::fail("CUDA attention_decode: {} splits (at most {})", n_split, kMaxCombineSplits);
  const int w = window > 0 && window < 0x7FFFFFFF ? int(window) : 0;
  const float sc = scale > 0.0f ? scale : 1.0f / std::sqrt(float(kv.head_dim));
  // GQA group split into the fewest subgroups of ≤ kMaxGroup heads, balanced.
  const int G = int(n_head / kv.n_kv_head);
  const int n_sub = (G + kMaxGroup - 1) / kMaxGroup;
  const int group = (G + n_sub - 1) / n_sub;
  const size_t smem = AttnSmem{kv.head_dim, group}.bytes();
  static bool attr_set = false;  // the largest (hd 256, 8 heads) needs ~84 KB
  if (!attr_set) {
    IMP_CUDA_CHECK(cudaFuncSetAttribute(attention_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        int(AttnSmem{kMaxHeadDim, kMaxGroup}.bytes())));
    attr_set = true;
  }
  launch_pdl(attention_kernel, dim3(unsigned(kv.n_kv_head * n_sub), unsigned(n_split), unsigned(n_tok)),
             dim3(kThreads), smem, stream, q, int(n_head), kv, w, sc, group, partials, counters, out, step);
  if (n_split > 1 && !counters) {
    launch_pdl(combine_kernel, dim3(unsigned((n_head + 3) / 4), unsigned(n_tok)), dim3(128), 0, stream, partials, int(n_head),
               n_split, int(kv.head_dim), out);
  }
}

void attention_prefill(const float* q, int64_t n_tok, int64_t n_head, KvView kv, int64_t window, float scale,
                       float* out, const StepParams* step, cudaStream_t stream) {
  attention_decode(q, n_tok, n_head, kv, window, scale, 1, nullptr, nullptr, out, step, stream);
}

}  // namespace imp::cuda
