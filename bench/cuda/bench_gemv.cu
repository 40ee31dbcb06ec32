// imp_bench_cuda_gemv — batch-1 decode GEMV throughput on the Llama-3-8B shapes.
//
// For each format and shape (rows × cols): enough copies of the weights that together
// they exceed 4× the L2 (so no run finds its weights in cache), filled with random bytes
// on the device (timing does not depend on the values). One sample = one GEMV on every
// copy in turn (one CUDA graph) between two CUDA events, divided by the number of copies; reported time is
// the median of --runs samples after warm-up. GB/s counts the weight bytes read (data +
// scale planes; x and y are < 0.2% of them). The ceiling is the measured device-to-device
// copy bandwidth, which counts bytes read + written, so a GEMV that only reads can in
// principle exceed fraction 1.0 slightly; ~0.9 of copy bandwidth is excellent.
//
// Kernels: every format runs what CudaBackend's default decode mode runs (f16 x: the
// tensor-core kernel on the kMma layout for Q4_0, Q8_0, NVFP4_CKPT, MXFP4_CKPT, else the
// FP32-activation kernel); those four formats also run the FP32-activation kernel they
// replace, so the table shows what the tensor cores buy. --int8 adds the integer-dot
// kernels (*_dp4a, opt-in in the backend): their time includes the stream-ordered workspace
// allocation and the x-quantization kernel (also timed alone, column "xq us").
//
// INT4_GROUP runs with group 128. Every row prints the ceiling's fraction ("of copy"),
// twice: each GEMV alone, and in a stream of GEMVs launched with programmatic dependent
// launch ("pdl": the next one's CTAs start and request their weights while the previous
// one drains — how a decode step runs its GEMVs; the launch latency then overlaps).
//
// Usage: imp_bench_cuda_gemv [--json PATH] [--runs N] [--formats bf16,q4_0,…] [--int8]
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "backends/cuda/check.h"
#include "backends/cuda/device.h"
#include "backends/cuda/gemv.h"
#include "backends/cuda/pdl.cuh"
#include "bench_device.h"
#include "formats/traits.h"

namespace {

using imp::FormatId;
using namespace imp::cuda;

__global__ void fill_random_bytes(uint8_t* p, int64_t n, uint64_t seed) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    uint64_t z = (uint64_t(i) + seed) * 0x9E3779B97F4A7C15ull;  // splitmix64 finaliser
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    p[i] = uint8_t(z ^ (z >> 31));
  }
}
__global__ void fill_activations(float* x, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    x[i] = float((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
  }
}

void fill(void* p, int64_t n, uint64_t seed) {
  if (n == 0) return;
  fill_random_bytes<<<1024, 256>>>(static_cast<uint8_t*>(p), n, seed);
  IMP_CUDA_CHECK_LAUNCH();
}

struct Result {
  std::string format, kernel;
  int64_t rows, cols, weight_bytes;
  int copies;
  double us, gbps, fraction;
  double xquant_us = 0;  // integer-dot kernels: x-quantization alone (included in us)
  double us_pdl = 0, fraction_pdl = 0;  // in a PDL stream (see bench_one)
};

// The x-quantizer a dp4a kernel of format f runs, alone: 64 back-to-back launches.
double time_xquant(FormatId f, const float* x, int64_t cols, cudaStream_t stream, int runs) {
  const bool k_quant = f == FormatId::Q4_K || f == FormatId::Q6_K;
  void* buf = nullptr;
  IMP_CUDA_CHECK(cudaMalloc(&buf, size_t(2 * cols + 4096)));
  auto* qs = static_cast<int8_t*>(buf);
  auto* d = reinterpret_cast<float*>(static_cast<uint8_t*>(buf) + cols);
  auto* extra = static_cast<uint8_t*>(buf) + cols + (cols / 32) * 4;  // sums / bsums
  constexpr int kLaunches = 64;
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  IMP_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < kLaunches; ++i) {
    if (k_quant) {
      quantize_x_q8_k(x, cols, qs, d, reinterpret_cast<int16_t*>(extra), stream);
    } else {
      quantize_x_q8_0(x, cols, qs, d, reinterpret_cast<int32_t*>(extra), stream);
    }
  }
  IMP_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  IMP_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  const double us = median_graph_us(exec, stream, runs, kLaunches);
  IMP_CUDA_CHECK(cudaGraphExecDestroy(exec));
  IMP_CUDA_CHECK(cudaGraphDestroy(graph));
  IMP_CUDA_CHECK(cudaFree(buf));
  return us;
}

bool has_split(FormatId f) { return f == FormatId::Q4_0 || f == FormatId::Q8_0 || f == FormatId::Q6_K; }

// What x is, as CudaDecodeActivations: kF16 = the backend's default (the kMma layout and
// its tensor-core kernel where the format and row length allow, else the FP32 kernels);
// kF32 = the FP32-activation kernels on the split/native layout; kInt8 = the integer-dot
// kernels (opt-in in the backend).
enum class Variant { kF16, kF32, kInt8 };

// nullopt when no kernel of that variant serves the format.
std::optional<Result> bench_one(FormatId f, int64_t rows, int64_t cols, int64_t l2, double copy_bw, int runs, Variant v) {
  const WeightLayout layout = v == Variant::kF16 && has_mma_layout(f, cols) ? WeightLayout::kMma
                              : has_split(f)                                 ? WeightLayout::kSplit
                                                                             : WeightLayout::kNative;
  const int64_t data_bytes = device_data_bytes(f, layout, rows, cols);
  const int32_t group = f == FormatId::INT4_GROUP ? 128 : 0;  // GPTQ/AWQ's usual group
  const int64_t scale_bytes = device_scale_bytes(f, layout, rows, cols, group);
  const int64_t zero_bytes = device_zero_bytes(f, rows, cols, group);
  const int64_t bytes = data_bytes + scale_bytes + zero_bytes;
  const int copies = int(4 * l2 / bytes) + 1;
  std::vector<void*> data(size_t(copies), nullptr), scales(size_t(copies), nullptr), zeros(size_t(copies), nullptr);
  for (int c = 0; c < copies; ++c) {
    IMP_CUDA_CHECK(cudaMalloc(&data[size_t(c)], size_t(data_bytes)));
    fill(data[size_t(c)], data_bytes, 17 * uint64_t(c) + 1);
    if (scale_bytes) {
      IMP_CUDA_CHECK(cudaMalloc(&scales[size_t(c)], size_t(scale_bytes)));
      fill(scales[size_t(c)], scale_bytes, 17 * uint64_t(c) + 2);
    }
    if (zero_bytes) {
      IMP_CUDA_CHECK(cudaMalloc(&zeros[size_t(c)], size_t(zero_bytes)));
      fill(zeros[size_t(c)], zero_bytes, 17 * uint64_t(c) + 3);
    }
  }
  float *x = nullptr, *y = nullptr;
  IMP_CUDA_CHECK(cudaMalloc(&x, size_t(cols) * sizeof(float)));
  IMP_CUDA_CHECK(cudaMalloc(&y, size_t(rows) * sizeof(float)));
  fill_activations<<<256, 256>>>(x, cols);
  IMP_CUDA_CHECK_LAUNCH();
  auto matrix = [&](int c) {
    return DeviceMatrix{f, rows, cols, data[size_t(c)], scales[size_t(c)], 0.01f, layout, zeros[size_t(c)], group};
  };
  IMP_CUDA_CHECK(cudaDeviceSynchronize());  // fills ran on the legacy stream
  const GemvKernel* chosen = nullptr;
  for (const GemvKernel& c : gemv_kernels()) {
    if (c.quantizes_x != (v == Variant::kInt8) || (c.half_x && v != Variant::kF16)) continue;
    if (can_implement(c, matrix(0), x, y).ok) {
      chosen = &c;
      break;
    }
  }
  auto release = [&] {
    for (int c = 0; c < copies; ++c) {
      IMP_CUDA_CHECK(cudaFree(data[size_t(c)]));
      if (scales[size_t(c)]) IMP_CUDA_CHECK(cudaFree(scales[size_t(c)]));
      if (zeros[size_t(c)]) IMP_CUDA_CHECK(cudaFree(zeros[size_t(c)]));
    }
    IMP_CUDA_CHECK(cudaFree(x));
    IMP_CUDA_CHECK(cudaFree(y));
  };
  if (!chosen) {
    release();
    return std::nullopt;
  }
  const GemvKernel& k = *chosen;
  // The GEMVs over all copies are captured into one CUDA graph, so that launch overhead
  // (a few µs per launch, comparable to a 4096×4096 4-bit GEMV) does not starve the GPU.
  // Timed twice: each launch alone (stream order: a GEMV starts when the one before has
  // drained) and in a PDL stream (pdl.cuh: the next GEMV's CTAs launch and request their
  // weights while the previous one finishes — how a decode step runs them).
  cudaStream_t stream;
  IMP_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  auto time_launches = [&](bool pdl) {
    set_pdl_enabled(pdl);
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    IMP_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    for (int c = 0; c < copies; ++c) k.launch(matrix(c), x, y, stream, GemvOut::kStore);
    IMP_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    IMP_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    const double t = median_graph_us(exec, stream, runs, copies);
    IMP_CUDA_CHECK(cudaGraphExecDestroy(exec));
    IMP_CUDA_CHECK(cudaGraphDestroy(graph));
    return t;
  };
  const double us = time_launches(false);
  const double us_pdl = time_launches(true);
  set_pdl_enabled(false);
  const double xquant_us = k.quantizes_x ? time_xquant(f, x, cols, stream, runs) : 0.0;
  IMP_CUDA_CHECK(cudaStreamDestroy(stream));
  const std::string kernel(k.name);
  release();
  const double gbps = double(bytes) / (us * 1e-6) / 1e9;
  const double gbps_pdl = double(bytes) / (us_pdl * 1e-6) / 1e9;
  return Result{std::string(imp::format_name(f)), kernel, rows, cols, bytes, copies, us, gbps, gbps * 1e9 / copy_bw,
                xquant_us, us_pdl, gbps_pdl * 1e9 / copy_bw};
}

}  // namespace

int main(int argc, char** argv) {
  std::string json_path;
  int runs = 60;
  bool int8 = false;
  int64_t one_shape[2] = {0, 0};
  // Every tier the CUDA GEMV serves (gemv_supports), each on the four Llama-3-8B shapes.
  std::string format_list =
      "bf16,f16,q8_0,q6_k,q4_k,q4_0,nvfp4_ckpt,fp8_e4m3_channel,fp8_e4m3_tensor,fp8_e4m3_block128,q4_1,q5_0,q5_1,"
      "q2_k,q3_k,q5_k,iq4_nl,iq4_xs,mxfp4,nvfp4,mxfp4_ckpt,int4_group";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else if (a == "--runs" && i + 1 < argc) {
      runs = std::max(50, std::atoi(argv[++i]));
    } else if (a == "--shape" && i + 1 < argc) {  // one ROWSxCOLS instead of the four 8B shapes
      const std::string v = argv[++i];
      const size_t xpos = v.find('x');
      one_shape[0] = std::atoll(v.substr(0, xpos).c_str());
      one_shape[1] = xpos == std::string::npos ? 0 : std::atoll(v.substr(xpos + 1).c_str());
    } else if (a == "--int8") {
      int8 = true;
    } else if (a == "--formats" && i + 1 < argc) {
      format_list = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--json PATH] [--runs N>=50] [--formats a,b,…] [--shape RxC] [--int8]\n", argv[0]);
      return 2;
    }
  }
  try {
    const double copy_gbps = print_device_and_copy_bandwidth("imp_bench_cuda_gemv");
    if (copy_gbps <= 0) return 1;
    const double copy_bw = copy_gbps * 1e9;
    const DeviceInfo dev = device_info(0);
    std::printf("\n");
    std::printf("%-17s %-13s %-22s %10s %9s %9s %7s %9s %7s %7s\n", "format", "rows x cols", "kernel", "MB", "us", "GB/s",
                "of copy", "us (pdl)", "of copy", "xq us");
    std::vector<std::array<int64_t, 2>> shapes = {{4096, 4096}, {14336, 4096}, {4096, 14336}, {128256, 4096}};
    if (one_shape[0] > 0 && one_shape[1] > 0) shapes = {{one_shape[0], one_shape[1]}};
    std::vector<Result> results;
    size_t pos = 0;
    while (pos <= format_list.size()) {
      const size_t comma = std::min(format_list.find(',', pos), format_list.size());
      const std::string name = format_list.substr(pos, comma - pos);
      pos = comma + 1;
      if (name.empty()) continue;
      const auto f = imp::format_from_name(name);
      if (!f || !gemv_supports(*f)) {
        std::fprintf(stderr, "unknown or unsupported format '%s'\n", name.c_str());
        return 2;
      }
      for (const auto& s : shapes) {
        // The backend's default (f16 x: tensor-core kernels where the layout allows); for the
        // formats that have them, also the FP32-activation kernels they replace; with --int8
        // the integer-dot kernels too.
        for (Variant v : {Variant::kF16, Variant::kF32, Variant::kInt8}) {
          // (FP8 per tensor / channel have a tensor-core kernel on their native layout.)
          const bool fp8_mma = *f == FormatId::FP8_E4M3_TENSOR || *f == FormatId::FP8_E4M3_CHANNEL;
          if (v == Variant::kF32 && !has_mma_layout(*f, s[1]) && !fp8_mma) continue;
          if (v == Variant::kInt8 && !int8) continue;
          const std::optional<Result> res = bench_one(*f, s[0], s[1], dev.l2_bytes, copy_bw, runs, v);
          if (!res) continue;
          const Result& r = *res;
          std::printf("%-17s %6ldx%-6ld %-22s %10.1f %9.1f %9.1f %7.3f %9.1f %7.3f", r.format.c_str(), long(r.rows),
                      long(r.cols), r.kernel.c_str(), double(r.weight_bytes) / 1e6, r.us, r.gbps, r.fraction, r.us_pdl,
                      r.fraction_pdl);
          if (r.xquant_us > 0) std::printf(" %7.1f", r.xquant_us);
          std::printf("\n");
          std::fflush(stdout);
          results.push_back(r);
        }
      }
    }
    if (!json_path.empty()) {
      FILE* out = std::fopen(json_path.c_str(), "w");
      if (!out) {
        std::fprintf(stderr, "cannot write %s\n", json_path.c_str());
        return 1;
      }
      std::fprintf(out, "{\n  \"device\": \"%s\",\n  \"copy_bandwidth_gbps\": %.3f,\n  \"runs\": %d,\n  \"results\": [\n",
                   dev.name.c_str(), copy_bw / 1e9, runs);
      for (size_t i = 0; i < results.size(); ++i) {
        const Result& r = results[i];
        std::fprintf(out,
                     "    {\"format\": \"%s\", \"kernel\": \"%s\", \"rows\": %ld, \"cols\": %ld, \"weight_bytes\": %ld, "
                     "\"copies\": %d, \"us\": %.3f, \"gbps\": %.3f, \"fraction_of_copy\": %.4f, \"xquant_us\": %.3f, "
                     "\"us_pdl\": %.3f, \"fraction_of_copy_pdl\": %.4f}%s\n",
                     r.format.c_str(), r.kernel.c_str(), long(r.rows), long(r.cols), long(r.weight_bytes), r.copies,
                     r.us, r.gbps, r.fraction, r.xquant_us, r.us_pdl, r.fraction_pdl, i + 1 < results.size() ? "," : "");
      }
      std::fprintf(out, "  ]\n}\n");
      std::fclose(out);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "imp_bench_cuda_gemv: %s\n", e.what());
    return 1;
  }
  return 0;
}
