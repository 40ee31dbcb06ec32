// imp_bench_cuda_attention — batch-1 decode attention on the Llama-3.1-8B shape (32 query
// heads, 8 KV heads, head_dim 128), per KV type, context and kernel.
//
// The cache of every layer holds `ctx` positions, encoded from random floats by the
// backend's own kv_write, in a block table that maps a layer's blocks in order. Enough
// layers that their K and V together exceed 4× the L2, so no layer finds its rows in cache.
// One sample = attention (and the split merge) of every layer in turn, one CUDA graph of
// PDL launches as a decode step runs them, between two CUDA events; reported: the median
// per layer of --runs samples after warm-up. The splits are the backend's for a cache of
// exactly ctx positions (decode_attention_splits). GB/s counts the K and V bytes of the
// ctx positions; the ceiling is the measured device copy bandwidth (bytes read + written).
// Each case runs both kernels — "split" (32-key splits + combine_kernel) and "wide" (the
// one-launch kernel, IMP_CUDA_ATTN_WIDE: 512-key splits merged in shared memory) — with and
// without the L2 prologue (IMP_CUDA_ATTN_PREFETCH).
//
// Usage: imp_bench_cuda_attention [--runs N] [--ctx 512,4096,…] [--kv f16,fp8_e4m3,…]
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "backends/cuda/attention_decode_kernel.h"
#include "backends/cuda/check.h"
#include "backends/cuda/device.h"
#include "backends/cuda/forward_kernels.h"
#include "bench_device.h"
#include "formats/kv_type.h"

namespace {

using namespace imp::cuda;

constexpr int kHeads = 32, kKvHeads = 8, kHeadDim = 128, kBlockTokens = 16;

__global__ void fill_floats(float* x, int64_t n, uint32_t seed) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    uint32_t z = uint32_t(i) * 2654435761u + seed;
    z ^= z >> 15;
    z *= 0x2C1B3C6Du;
    z ^= z >> 12;
    x[i] = float(z % 2001) / 1000.0f - 1.0f;  // [-1, 1]
  }
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t a = 0;
  while (a <= s.size()) {
    const size_t b = std::min(s.find(',', a), s.size());
    if (b > a) out.push_back(s.substr(a, b - a));
    a = b + 1;
  }
  return out;
}

// One (KV type, context): builds the layers, prints a row per kernel.
void bench_case(imp::KvType type, int64_t ctx, int runs, double copy_bw, int64_t l2_bytes, cudaStream_t stream) {
  const int64_t row = imp::kv_row_bytes(type, kHeadDim);
  const int64_t blocks = (ctx + kBlockTokens - 1) / kBlockTokens;
  const int64_t layer_bytes = blocks * kBlockTokens * kKvHeads * row;  // K (V the same)
  const int layers = int(std::clamp<int64_t>((4 * l2_bytes) / (2 * layer_bytes) + 1, 2, 256));
  uint8_t *k_pool = nullptr, *v_pool = nullptr;
  int32_t* table = nullptr;
  float *q = nullptr, *src = nullptr, *out = nullptr, *partials = nullptr;
  StepParams* step = nullptr;
  IMP_CUDA_CHECK(cudaMalloc(&k_pool, size_t(layer_bytes * layers)));
  IMP_CUDA_CHECK(cudaMalloc(&v_pool, size_t(layer_bytes * layers)));
  IMP_CUDA_CHECK(cudaMalloc(&table, size_t(blocks * layers) * 4));
  IMP_CUDA_CHECK(cudaMalloc(&q, size_t(kHeads * kHeadDim) * 4));
  IMP_CUDA_CHECK(cudaMalloc(&out, size_t(kHeads * kHeadDim) * 4));
  IMP_CUDA_CHECK(cudaMalloc(&src, size_t((ctx + 1) * kKvHeads * kHeadDim) * 4));  // + v's shift
  IMP_CUDA_CHECK(cudaMalloc(&partials, size_t(kHeads) * 128 * (kHeadDim + 2) * 4));
  IMP_CUDA_CHECK(cudaMalloc(&step, sizeof(StepParams)));
  std::vector<int32_t> t(size_t(blocks * layers));
  for (size_t i = 0; i < t.size(); ++i) t[i] = int32_t(i);
  IMP_CUDA_CHECK(cudaMemcpy(table, t.data(), t.size() * 4, cudaMemcpyHostToDevice));
  fill_floats<<<256, 256, 0, stream>>>(q, kHeads * kHeadDim, 7);
  auto view = [&](int l) {
    KvView v;
    v.k_pool = k_pool;
    v.v_pool = v_pool;
    v.k_table = table + int64_t(l) * blocks;
    v.v_table = v.k_table;
    v.block_tokens = kBlockTokens;
    v.n_kv_head = kKvHeads;
    v.head_dim = kHeadDim;
    v.row_bytes = int32_t(row);
    v.dtype = int32_t(type);
    return v;
  };
  // Every layer's rows, encoded as the backend does (K and V from different random floats).
  StepParams fill_step{0, int32_t(ctx)};
  IMP_CUDA_CHECK(cudaMemcpyAsync(step, &fill_step, sizeof(StepParams), cudaMemcpyHostToDevice, stream));
  for (int l = 0; l < layers; ++l) {
    fill_floats<<<1024, 256, 0, stream>>>(src, (ctx + 1) * kKvHeads * kHeadDim, uint32_t(100 + l));
    kv_write(src, src + kHeadDim / 2, ctx, view(l), step, stream);  // v: the same floats, shifted
  }
  const StepParams decode_step{int32_t(ctx - 1), 1};
  IMP_CUDA_CHECK(cudaMemcpyAsync(step, &decode_step, sizeof(StepParams), cudaMemcpyHostToDevice, stream));
  IMP_CUDA_CHECK(cudaStreamSynchronize(stream));
  const double kv_bytes = 2.0 * double(ctx) * kKvHeads * row;
  for (int form = 0; form < 4; ++form) {
    const bool wide = form >= 2, prefetch = form % 2 == 0;
    set_attention_wide(wide);
    set_attention_prefetch(prefetch);
    const int32_t splits = decode_attention_splits(ctx, ctx);
    // Once outside the capture: the first launch of a kernel sets its shared-memory limit.
    attention_decode(q, 1, kHeads, view(0), 0, 0.0f, splits, partials, out, step, stream);
    IMP_CUDA_CHECK(cudaStreamSynchronize(stream));
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    IMP_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    for (int l = 0; l < layers; ++l) {
      attention_decode(q, 1, kHeads, view(l), 0, 0.0f, splits, partials, out, step, stream);
    }
    IMP_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    IMP_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    const double us = median_graph_us(exec, stream, runs, layers);
    IMP_CUDA_CHECK(cudaGraphExecDestroy(exec));
    IMP_CUDA_CHECK(cudaGraphDestroy(graph));
    const double gbps = kv_bytes / us / 1e3;
    std::printf("%-10s %-6s %7lld %7d %-8s %7d %9.2f %9.1f %8.3f %10.1f\n", std::string(imp::kv_type_name(type)).c_str(),
                wide ? "wide" : "split", (long long)ctx, splits, prefetch ? "on" : "off", layers, us, gbps, gbps / copy_bw,
                32 * us);
  }
  for (void* p : {static_cast<void*>(k_pool), static_cast<void*>(v_pool), static_cast<void*>(table),
                  static_cast<void*>(q), static_cast<void*>(out), static_cast<void*>(src), static_cast<void*>(partials),
                  static_cast<void*>(step)}) {
    IMP_CUDA_CHECK(cudaFree(p));
  }
  set_attention_prefetch(true);
  set_attention_wide(false);
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 50;
  std::string ctx_list = "512,1024,4096,16384", kv_list = "f16,fp8_e4m3,int8";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) {
      runs = std::max(20, std::atoi(argv[++i]));
    } else if (a == "--ctx" && i + 1 < argc) {
      ctx_list = argv[++i];
    } else if (a == "--kv" && i + 1 < argc) {
      kv_list = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--runs N>=20] [--ctx 512,4096,…] [--kv f16,fp8_e4m3,…]\n", argv[0]);
      return 2;
    }
  }
  try {
    const double copy_bw = print_device_and_copy_bandwidth("imp_bench_cuda_attention");  // GB/s
    if (copy_bw <= 0) return 1;
    const DeviceInfo dev = device_info(0);
    std::printf("decode attention, %d heads / %d KV heads / head_dim %d; µs per layer (median of %d), GB/s of K+V\n",
                kHeads, kKvHeads, kHeadDim, runs);
    std::printf("%-10s %-6s %7s %7s %-8s %7s %9s %9s %8s %10s\n", "kv", "kernel", "ctx", "splits", "prefetch", "layers",
                "us/layer", "GB/s", "of copy", "us/32 lay");
    cudaStream_t stream;
    IMP_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    for (const std::string& kv : split_list(kv_list)) {
      const imp::KvType type = imp::parse_kv_type(kv);
      for (const std::string& c : split_list(ctx_list)) {
        bench_case(type, std::max<int64_t>(1, std::atoll(c.c_str())), runs, copy_bw, int64_t(dev.l2_bytes), stream);
      }
    }
    IMP_CUDA_CHECK(cudaStreamDestroy(stream));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "imp_bench_cuda_attention: %s\n", e.what());
    return 1;
  }
  return 0;
}
