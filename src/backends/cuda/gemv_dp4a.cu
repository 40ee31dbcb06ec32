// Integer-dot GEMV kernels (llama.cpp "mmvq" style) for the 4/6-bit formats:
//   q4_0_split_dp4a  : Q4_0, kSplit   × Q8_0 x      nvfp4_ckpt_dp4a : NVFP4_CKPT × Q8_0 x
//   q4_k_dp4a        : Q4_K, native   × Q8_K x      q6_k_split_dp4a : Q6_K, kSplit × Q8_K x
// launch(): x is quantized once per GEMV (quantize_x.cu) into a stream-ordered workspace,
// then one warp owns kRows rows and walks them in 16-byte weight units exactly like
// gemv_vec_kernel (gemv_kernel.cuh: lane-strided coalesced __ldcs loads, kUnroll·kRows
// loads in flight, the activation slice loaded once per unit and shared by the rows).
// Per unit the weights stay integers: a word of 8 nibbles becomes two words of 4 bytes
// (& 0x0F0F0F0F, >> 4) and each word meets 4 int8 activations in one __dp4a; only the
// per-(sub)block scale products are FP32, written as __fmul_rn in the CPU's order.
//
// Per-unit arithmetic, against the CPU vec_dot_ref of each format (src/formats/*.cc):
//   Q4_0  unit = 1 block (16 qs bytes): sumi = Σ nib·q − 8·Σq (Σq precomputed), term =
//         (sumi·d_w)·d_x — identical to the CPU's per-block term.
//   Q4_K  unit = 16 qs bytes = 16 weights of sub-block 2c (low nibbles) and 16 of 2c+1
//         (high): isum = sc_lo·Σlo + sc_hi·Σhi, summs = m_lo·bsum_lo + m_hi·bsum_hi (Q8_K
//         bsums of exactly those 16-element groups), term = (d_w·d_x)·isum − (dmin·d_x)·summs.
//         The CPU forms isum/summs over the whole 256-block before the FP32 products, so
//         terms are grouped differently (8 per block here): FP32 rounding only.
//   Q6_K  unit = 16 ql bytes = two 16-element sub-blocks: Σ(q−32)·x = Σq·x − 32·bsum,
//         term = (d_w·d_x)·(sc_lo·Σlo + sc_hi·Σhi); the CPU again sums isum per block first.
//   NVFP4 unit = 16 data bytes = 32 weights = one Q8_0 block of x, two E4M3 scales: each
//         E2M1 code becomes the int8 2·E2M1 ∈ {0, ±1, ±2, ±3, ±4, ±6, ±8, ±12} by
//         __byte_perm table lookups; term per 16 = sumi·(((0.5·S)·G)·d_x) as the CPU.
// Integer ranges: |Σ| ≤ 32·63·127 per unit, far inside int32.
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <atomic>

#include "backends/cuda/decode_gguf.cuh"
#include "backends/cuda/gemv_kernel.cuh"

namespace imp::cuda::detail {
namespace {

// The quantized activation planes a kernel reads (device pointers into the workspace).
struct XQ {
  const int8_t* qs;
  const float* d;       // per 32 (Q8_0) or per 256 (Q8_K)
  const int32_t* sums;  // Q8_0: Σ qs per 32
  const int16_t* bsums;  // Q8_K: Σ qs per 16
};

__device__ __forceinline__ float half_bits(uint32_t h) { return __half2float(__ushort_as_half((unsigned short)(h & 0xFFFF))); }
__device__ __forceinline__ uint32_t word(const uint4& v, int i) { return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w; }
__device__ __forceinline__ int iword(const int4& v, int i) { return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w; }
__device__ __forceinline__ int4 load_q16(const int8_t* p) { return __ldg(reinterpret_cast<const int4*>(p)); }
__device__ __forceinline__ int lo4(uint32_t w) { return int(w & 0x0F0F0F0Fu); }
__device__ __forceinline__ int hi4(uint32_t w) { return int((w >> 4) & 0x0F0F0F0Fu); }

struct SplitRow {
  const uint8_t* payload;
  const uint8_t* d;
};
__device__ __forceinline__ float load_d(const uint8_t* d_plane, int64_t block) {
  return half_bits(__ldcs(reinterpret_cast<const unsigned short*>(d_plane) + block));
}

// ---- Q4_0 split × Q8_0 --------------------------------------------------------------------
struct Q4_0SplitDp4a {
  static constexpr int kElemsPerUnit = 32;
  using Row = SplitRow;
  struct Raw {
    uint4 qs;
    float d;
  };
  struct XFrag {
    int4 lo, hi;  // codes of elements 0..15 (low nibbles), 16..31 (high nibbles)
    float d;
    int sum;
  };
  __device__ static Row row(const KernelArgs& a, int64_t r) {
    return {a.data + r * a.data_row_bytes, a.scales + r * a.scale_row_bytes};
  }
  __device__ static Raw load(const Row& r, int u) { return {load_stream16(r.payload + 16 * int64_t(u)), load_d(r.d, u)}; }
  __device__ static XFrag load_x(const XQ& x, int u) {
    const int8_t* q = x.qs + 32 * int64_t(u);
    return {load_q16(q), load_q16(q + 16), __ldg(x.d + u), __ldg(x.sums + u)};
  }
  __device__ static float dot(const Row&, int, const Raw& w, const XFrag& x) {
    int s = 0;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint32_t b = word(w.qs, i);  // bytes 4i..4i+3: elements 4i.. (lo), 16+4i.. (hi)
      s = __dp4a(lo4(b), iword(x.lo, i), s);
      s = __dp4a(hi4(b), iword(x.hi, i), s);
    }
    return __fmul_rn(__fmul_rn(float(s - 8 * x.sum), w.d), x.d);
  }
  __device__ static float finish(const KernelArgs&, const Row&, float acc) { return acc; }
};

// ---- Q4_K native × Q8_K -------------------------------------------------------------------
// Unit u: block b = u/8, qs chunk q = u%8: run c = q/2, half h = q%2; low nibbles are
// elements 64c + 16h + i (sub-block 2c), high nibbles 64c + 32 + 16h + i (sub-block 2c+1).
struct Q4_KDp4a {
  static constexpr int kElemsPerUnit = 32;
  struct Row {
    const uint8_t* data;
  };
  struct Raw {
    uint4 hdr;  // d, dmin, scales[12]
    uint4 qs;
  };
  struct XFrag {
    int4 lo, hi;
    float d;
    int bs_lo, bs_hi;
  };
  __device__ static Row row(const KernelArgs& a, int64_t r) { return {a.data + r * a.data_row_bytes}; }
  __device__ static Raw load(const Row& r, int u) {
    const uint8_t* blk = r.data + int64_t(u / 8) * kQ4_KBytes;
    // The header is shared by the 8 lanes of a block: one L1 line, read from HBM once.
    return {__ldg(reinterpret_cast<const uint4*>(blk)), load_stream16(blk + 16 + 16 * (u % 8))};
  }
  __device__ static XFrag load_x(const XQ& x, int u) {
    const int64_t b = u / 8;
    const int q = u % 8, c = q / 2, h = q % 2;
    const int8_t* p = x.qs + 256 * b + 64 * c + 16 * h;
    const int16_t* bs = x.bsums + 16 * b + 4 * c + h;
    return {load_q16(p), load_q16(p + 32), __ldg(x.d + b), int(__ldg(bs)), int(__ldg(bs + 2))};
  }
  __device__ static float dot(const Row&, int u, const Raw& w, const XFrag& x) {
    uint8_t s[12];
#pragma unroll
    for (int i = 0; i < 12; ++i) s[i] = uint8_t(word(w.hdr, 1 + i / 4) >> (8 * (i % 4)));
    int sc_lo, m_lo, sc_hi, m_hi;
    // Run-time sub-block pair: expand the four cases so s[] stays in registers.
    switch ((u % 8) / 2) {
      case 0: q4_k_scale_min(s, 0, sc_lo, m_lo); q4_k_scale_min(s, 1, sc_hi, m_hi); break;
      case 1: q4_k_scale_min(s, 2, sc_lo, m_lo); q4_k_scale_min(s, 3, sc_hi, m_hi); break;
      case 2: q4_k_scale_min(s, 4, sc_lo, m_lo); q4_k_scale_min(s, 5, sc_hi, m_hi); break;
      default: q4_k_scale_min(s, 6, sc_lo, m_lo); q4_k_scale_min(s, 7, sc_hi, m_hi); break;
    }
    int s_lo = 0, s_hi = 0;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint32_t b = word(w.qs, i);
      s_lo = __dp4a(lo4(b), iword(x.lo, i), s_lo);
      s_hi = __dp4a(hi4(b), iword(x.hi, i), s_hi);
    }
    const int isum = sc_lo * s_lo + sc_hi * s_hi;
    const int summs = m_lo * x.bs_lo + m_hi * x.bs_hi;
    const float d = __fmul_rn(half_bits(w.hdr.x), x.d);
    const float dmin = __fmul_rn(half_bits(w.hdr.x >> 16), x.d);
    return __fsub_rn(__fmul_rn(d, float(isum)), __fmul_rn(dmin, float(summs)));
  }
  __device__ static float finish(const KernelArgs&, const Row&, float acc) { return acc; }
};

// ---- Q6_K split × Q8_K --------------------------------------------------------------------
// Unit u: block b = u/8, ql chunk k = u%8: h = k/4, g = (k%4)/2, half = k%2. Low nibbles
// (+ qh bits 2g) are elements 128h + 32g + 16·half + i = 16-group t_lo = 8h + 2g + half;
// high nibbles (+ qh bits 2g+4) are 64 further on, t_hi = t_lo + 4. A group's scale index
// and its Q8_K bsum index are both t.
struct Q6_KSplitDp4a {
  static constexpr int kElemsPerUnit = 32;
  using Row = SplitRow;
  struct Raw {
    uint4 ql, qh, sc;
    float d;
  };
  struct XFrag {
    int4 lo, hi;
    float d;
    int bs_lo, bs_hi;
  };
  __device__ static Row row(const KernelArgs& a, int64_t r) {
    return {a.data + r * a.data_row_bytes, a.scales + r * a.scale_row_bytes};
  }
  __device__ static Raw load(const Row& r, int u) {
    const uint8_t* p = r.payload + int64_t(u / 8) * kQ6_KPayload;
    const int k = u % 8;
    return {load_stream16(p + 16 * k), __ldg(reinterpret_cast<const uint4*>(p + 128 + 32 * (k / 4) + 16 * (k % 2))),
            __ldg(reinterpret_cast<const uint4*>(p + 192)), load_d(r.d, u / 8)};
  }
  __device__ static XFrag load_x(const XQ& x, int u) {
    const int64_t b = u / 8;
    const int k = u % 8, t_lo = 8 * (k / 4) + 2 * ((k % 4) / 2) + k % 2;
    const int8_t* p = x.qs + 256 * b + 16 * t_lo;
    const int16_t* bs = x.bsums + 16 * b + t_lo;
    return {load_q16(p), load_q16(p + 64), __ldg(x.d + b), int(__ldg(bs)), int(__ldg(bs + 4))};
  }
  __device__ static float dot(const Row&, int u, const Raw& w, const XFrag& x) {
    const int k = u % 8, g = (k % 4) / 2;
    const int t_lo = 8 * (k / 4) + 2 * g + k % 2, t_hi = t_lo + 4;
    const int sc_lo = int8_t(word(w.sc, t_lo / 4) >> (8 * (t_lo % 4)));
    const int sc_hi = int8_t(word(w.sc, t_hi / 4) >> (8 * (t_hi % 4)));
    int s_lo = 0, s_hi = 0;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const uint32_t ql = word(w.ql, j), qh = word(w.qh, j);
      const uint32_t q_lo = (ql & 0x0F0F0F0Fu) | (((qh >> (2 * g)) & 0x03030303u) << 4);         // 0..63
      const uint32_t q_hi = ((ql >> 4) & 0x0F0F0F0Fu) | (((qh >> (2 * g + 4)) & 0x03030303u) << 4);
      s_lo = __dp4a(int(q_lo), iword(x.lo, j), s_lo);
      s_hi = __dp4a(int(q_hi), iword(x.hi, j), s_hi);
    }
    const int isum = sc_lo * (s_lo - 32 * x.bs_lo) + sc_hi * (s_hi - 32 * x.bs_hi);
    return __fmul_rn(__fmul_rn(w.d, x.d), float(isum));
  }
  __device__ static float finish(const KernelArgs&, const Row&, float acc) { return acc; }
};

// ---- NVFP4_CKPT × Q8_0 --------------------------------------------------------------------
// Four E2M1 codes (the low 16 bits of w, element order = nibble order) → four int8 2·E2M1.
// __byte_perm(lo, hi, s) returns byte n = byte s<4n+2:4n> of {hi:lo} and ignores the 4th
// bit of every selector nibble and the upper 16 bits of s (CUDA libdevice __nv_byte_perm),
// so the codes index the magnitude tables directly with their sign bit ignored; a third
// permute then takes byte n from the positive (n) or the negative (n + 4) lookup according
// to the sign bit (bit 3 of nibble n → bit 2 of selector n).
__device__ __forceinline__ int e2m1x4_to_i8x4(uint32_t w) {
  const uint32_t pos = __byte_perm(0x03020100u, 0x0C080604u, w);  // 0 1 2 3 | 4 6 8 12
  const uint32_t neg = __byte_perm(0xFDFEFF00u, 0xF4F8FAFCu, w);  // 0 −1 −2 −3 | −4 −6 −8 −12
  return int(__byte_perm(pos, neg, 0x3210u | ((w & 0x8888u) >> 1)));
}

struct Nvfp4CkptDp4a {
  static constexpr int kElemsPerUnit = 32;
  struct Row {
    const uint8_t* data;
    const uint8_t* scales;
    float g;
  };
  struct Raw {
    uint4 q;      // word i = elements 8i .. 8i+7 in nibble order
    uint32_t s2;  // the unit's two E4M3 block scales
  };
  struct XFrag {
    int4 lo, hi;  // codes of elements 0..15, 16..31
    float d;
  };
  __device__ static Row row(const KernelArgs& a, int64_t r) {
    return {a.data + r * a.data_row_bytes, a.scales + r * a.scale_row_bytes, a.tensor_scale};
  }
  __device__ static Raw load(const Row& r, int u) {
    return {load_stream16(r.data + 16 * int64_t(u)), __ldcs(reinterpret_cast<const unsigned short*>(r.scales) + u)};
  }
  __device__ static XFrag load_x(const XQ& x, int u) {
    const int8_t* q = x.qs + 32 * int64_t(u);
    return {load_q16(q), load_q16(q + 16), __ldg(x.d + u)};
  }
  __device__ static int dot16(uint32_t w0, uint32_t w1, const int4& xq) {
    int s = __dp4a(e2m1x4_to_i8x4(w0), xq.x, 0);
    s = __dp4a(e2m1x4_to_i8x4(w0 >> 16), xq.y, s);
    s = __dp4a(e2m1x4_to_i8x4(w1), xq.z, s);
    return __dp4a(e2m1x4_to_i8x4(w1 >> 16), xq.w, s);
  }
  __device__ static float scale(uint32_t e4m3, float g, float dx) {
    const __half_raw hr = __nv_cvt_fp8_to_halfraw(__nv_fp8_storage_t(e4m3 & 0xFF), __NV_E4M3);  // exact
    return __fmul_rn(__fmul_rn(__fmul_rn(0.5f, __half2float(__half(hr))), g), dx);
  }
  __device__ static float dot(const Row& r, int, const Raw& w, const XFrag& x) {
    const int s0 = dot16(w.q.x, w.q.y, x.lo), s1 = dot16(w.q.z, w.q.w, x.hi);
    return __fadd_rn(__fmul_rn(float(s0), scale(w.s2, r.g, x.d)), __fmul_rn(float(s1), scale(w.s2 >> 8, r.g, x.d)));
  }
  __device__ static float finish(const KernelArgs&, const Row&, float acc) { return acc; }
};

// ---- kernel and launch --------------------------------------------------------------------
template <class Op, int kRows, int kUnroll>
__global__ void __launch_bounds__(kWarpsPerBlock * 32) gemv_dp4a_kernel(KernelArgs a, XQ xq) {
  const int lane = threadIdx.x & 31;
  const int64_t row0 = (int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32) * kRows;
  if (row0 >= a.rows) return;
  typename Op::Row rows[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) rows[r] = Op::row(a, row0 + r < a.rows ? row0 + r : a.rows - 1);
  const int units = int(a.cols / Op::kElemsPerUnit);
  float acc[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) acc[r] = 0.0f;
  for (int u0 = lane; u0 < units; u0 += 32 * kUnroll) {
    typename Op::Raw raw[kUnroll][kRows];
#pragma unroll
    for (int i = 0; i < kUnroll; ++i) {
      if (u0 + 32 * i < units) {
#pragma unroll
        for (int r = 0; r < kRows; ++r) raw[i][r] = Op::load(rows[r], u0 + 32 * i);
      }
    }
#pragma unroll
    for (int i = 0; i < kUnroll; ++i) {
      const int u = u0 + 32 * i;
      if (u < units) {
        const typename Op::XFrag xf = Op::load_x(xq, u);
#pragma unroll
        for (int r = 0; r < kRows; ++r) acc[r] += Op::dot(rows[r], u, raw[i][r], xf);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const float s = warp_sum(acc[r]);
    if (lane == 0 && row0 + r < a.rows) store_y(a, row0 + r, Op::finish(a, rows[r], s));
  }
}

enum class XKind { kQ8_0, kQ8_K };

int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }

// Stream-ordered scratch for the quantized x: allocated on `stream` (cudaMallocAsync, also
// valid under graph capture) and freed on it after the GEMV is enqueued, so concurrent
// GEMVs on different streams never share it. Layout: qs (cols bytes) | d | sums or bsums.
class XWorkspace {
 public:
  XWorkspace(XKind kind, int64_t cols, cudaStream_t stream) : stream_(stream) {
    keep_pool_memory(stream);
    const int64_t blocks = kind == XKind::kQ8_0 ? cols / 32 : cols / 256;
    const int64_t qs_bytes = round16(cols), d_bytes = round16(4 * blocks);
    const int64_t extra_bytes = kind == XKind::kQ8_0 ? 4 * blocks : 2 * (cols / 16);
    IMP_CUDA_CHECK(cudaMallocAsync(&base_, size_t(qs_bytes + d_bytes + extra_bytes), stream));
    auto* p = static_cast<uint8_t*>(base_);
    qs_ = reinterpret_cast<int8_t*>(p);
    d_ = reinterpret_cast<float*>(p + qs_bytes);
    if (kind == XKind::kQ8_0) sums_ = reinterpret_cast<int32_t*>(p + qs_bytes + d_bytes);
    if (kind == XKind::kQ8_K) bsums_ = reinterpret_cast<int16_t*>(p + qs_bytes + d_bytes);
  }
  ~XWorkspace() { cudaFreeAsync(base_, stream_); }
  XWorkspace(const XWorkspace&) = delete;
  XWorkspace& operator=(const XWorkspace&) = delete;
  XQ planes() const { return {qs_, d_, sums_, bsums_}; }
  int8_t* qs() const { return qs_; }
  float* d() const { return d_; }
  int32_t* sums() const { return sums_; }
  int16_t* bsums() const { return bsums_; }

 private:
  // The default pool returns unused memory to the OS at every synchronization unless a
  // release threshold says otherwise; a decode loop syncs every token, which would make
  // each first GEMV after a sync map fresh memory. Keep up to 64 MiB cached (once per
  // device, skipped while capturing: pool attributes are not stream work).
  static void keep_pool_memory(cudaStream_t stream) {
    static std::atomic<uint64_t> done{0};
    int dev = 0;
    IMP_CUDA_CHECK(cudaGetDevice(&dev));
    if (dev >= 64 || (done.load() >> dev & 1)) return;
    cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
    IMP_CUDA_CHECK(cudaStreamIsCapturing(stream, &st));
    if (st != cudaStreamCaptureStatusNone) return;
    cudaMemPool_t pool;
    IMP_CUDA_CHECK(cudaDeviceGetMemPool(&pool, dev));
    uint64_t keep = 0;
    IMP_CUDA_CHECK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
    if (keep < (uint64_t(64) << 20)) {
      keep = uint64_t(64) << 20;
      IMP_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
    }
    done.fetch_or(uint64_t(1) << dev);
  }
  cudaStream_t stream_;
  void* base_ = nullptr;
  int8_t* qs_ = nullptr;
  float* d_ = nullptr;
  int32_t* sums_ = nullptr;
  int16_t* bsums_ = nullptr;
};

template <class Op, XKind kX, int kRows, int kUnroll>
void launch_dp4a(const DeviceMatrix& w, const float* x, float* y, cudaStream_t stream, GemvOut out) {
  const KernelArgs a = make_args(w, x, y, out);
  XWorkspace ws(kX, a.cols, stream);
  if (kX == XKind::kQ8_0) {
    quantize_x_q8_0(x, a.cols, ws.qs(), ws.d(), ws.sums(), stream);
  } else {
    quantize_x_q8_k(x, a.cols, ws.qs(), ws.d(), ws.bsums(), stream);
  }
  const int64_t warps = (a.rows + kRows - 1) / kRows;
  const int64_t blocks = (warps + kWarpsPerBlock - 1) / kWarpsPerBlock;
  gemv_dp4a_kernel<Op, kRows, kUnroll><<<unsigned(blocks), kWarpsPerBlock * 32, 0, stream>>>(a, ws.planes());
  IMP_CUDA_CHECK_LAUNCH();
}

// x is read by the quantizer only (any 4-byte alignment); the weights need 16-byte units.
KernelCheck check_q4_0(const DeviceMatrix& w, const float* x, const float*) {
  return all_of({check_aligned(w.data, 16, "payload plane"), check_aligned(w.scales, 2, "d plane"),
                 check_aligned(x, 4, "x")});
}
KernelCheck check_q6_k(const DeviceMatrix& w, const float* x, const float*) { return check_q4_0(w, x, nullptr); }
KernelCheck check_q4_k(const DeviceMatrix& w, const float* x, const float*) {
  return all_of({check_aligned(w.data, 16, "weights"), check_aligned(x, 4, "x")});
}
KernelCheck check_nvfp4(const DeviceMatrix& w, const float* x, const float*) {
  return all_of({check_cols_multiple(w.cols, 32, "x is quantized in Q8_0 blocks of 32"),
                 check_aligned(w.data, 16, "weights"), check_aligned(w.scales, 2, "block scales"),
                 check_aligned(x, 4, "x")});
}

constexpr WeightLayout N = WeightLayout::kNative, S = WeightLayout::kSplit;
const GemvKernel kKernels[] = {
    {"q4_0_split_dp4a", FormatId::Q4_0, S, check_q4_0, launch_dp4a<Q4_0SplitDp4a, XKind::kQ8_0, 2, 4>, true},
    {"q4_k_dp4a", FormatId::Q4_K, N, check_q4_k, launch_dp4a<Q4_KDp4a, XKind::kQ8_K, 2, 4>, true},
    {"q6_k_split_dp4a", FormatId::Q6_K, S, check_q6_k, launch_dp4a<Q6_KSplitDp4a, XKind::kQ8_K, 2, 2>, true},
    {"nvfp4_ckpt_dp4a", FormatId::NVFP4_CKPT, N, check_nvfp4, launch_dp4a<Nvfp4CkptDp4a, XKind::kQ8_0, 2, 4>, true},
};

}  // namespace

std::vector<GemvKernel> dp4a_gemv_kernels() { return {std::begin(kKernels), std::end(kKernels)}; }

}  // namespace imp::cuda::detail
