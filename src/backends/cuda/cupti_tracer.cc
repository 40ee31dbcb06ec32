#include "backends/cuda/cupti_tracer.h"

#include "common/error.h"

#if !IMP_HAVE_CUPTI_HEADERS
namespace imp::cuda {
void cupti_start() { fail("kernel trace: this imp was built without the CUPTI headers (cupti.h not found by CMake)"); }
bool cupti_active() { return false; }
uint64_t cupti_now_ns() { cupti_start(); return 0; }
std::vector<KernelSpan> cupti_take(uint64_t, uint64_t) { cupti_start(); return {}; }
}  // namespace imp::cuda
#else

#include <cupti.h>
#include <cxxabi.h>
#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>

namespace imp::cuda {
namespace {

// The CUPTI entry points imp uses, resolved from the loaded library.
struct Cupti {
  void* lib = nullptr;
  decltype(&cuptiActivityRegisterCallbacks) register_callbacks = nullptr;
  decltype(&cuptiActivityEnable) enable = nullptr;
  decltype(&cuptiActivityFlushAll) flush_all = nullptr;
  decltype(&cuptiActivityGetNextRecord) next_record = nullptr;
  decltype(&cuptiGetTimestamp) timestamp = nullptr;
  decltype(&cuptiGetResultString) result_string = nullptr;
};

// Completed kernels not yet taken, guarded by a mutex: CUPTI calls back from its own thread,
// possibly during process exit, so both live on the heap and are never destroyed.
struct Store {
  std::mutex mutex;
  std::vector<KernelSpan> spans;
};
Store& store() {
  static Store* s = new Store;
  return *s;
}
Cupti g_cupti;
bool g_active = false;

std::string demangle(const char* name) {
  if (!name) return "?";
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> d(abi::__cxa_demangle(name, nullptr, nullptr, &status), std::free);
  return status == 0 && d ? std::string(d.get()) : std::string(name);
}

constexpr size_t kBufferBytes = 8 << 20;

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = *buffer ? kBufferBytes : 0;
  *max_records = 0;  // as many as fit
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  std::vector<KernelSpan> got;
  CUpti_Activity* rec = nullptr;
  while (g_cupti.next_record(buffer, valid, &rec) == CUPTI_SUCCESS) {
    if (rec->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) continue;
    // start / end / name sit at the same offsets in every CUpti_ActivityKernel version.
    const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(rec);
    got.push_back({demangle(k->name), k->start, k->end});
  }
  std::free(buffer);
  Store& st = store();
  std::lock_guard<std::mutex> lock(st.mutex);
  st.spans.insert(st.spans.end(), std::make_move_iterator(got.begin()), std::make_move_iterator(got.end()));
}

void* open_cupti(std::string& tried) {
  std::vector<std::string> names;
  if (const char* e = std::getenv("IMP_CUPTI_LIB"); e && *e) names.emplace_back(e);
  for (const char* n : {"libcupti.so", "libcupti.so.13", "libcupti.so.12", "/usr/local/cuda/extras/CUPTI/lib64/libcupti.so",
                        "/usr/local/cuda/lib64/libcupti.so"}) {
    names.emplace_back(n);
  }
  for (const std::string& n : names) {
    if (void* h = dlopen(n.c_str(), RTLD_NOW | RTLD_LOCAL)) return h;
    tried += (tried.empty() ? "" : ", ") + n;
  }
  return nullptr;
}

template <class F>
void resolve(F& fn, const char* symbol) {
  fn = reinterpret_cast<F>(dlsym(g_cupti.lib, symbol));
  if (!fn) fail("kernel trace: libcupti has no {} (a CUPTI older than CUDA 12?)", symbol);
}

void check(CUptiResult r, const char* what) {
  if (r == CUPTI_SUCCESS) return;
  const char* msg = nullptr;
  if (g_cupti.result_string) g_cupti.result_string(r, &msg);
  fail("kernel trace: {} failed: {} ({})", what, msg ? msg : "unknown CUPTI error", int(r));
}

}  // namespace

void cupti_start() {
  if (g_active) return;
  std::string tried;
  g_cupti.lib = open_cupti(tried);
  if (!g_cupti.lib) {
    fail("kernel trace needs CUPTI (libcupti, part of the CUDA toolkit); none loaded from: {}. Set IMP_CUPTI_LIB to its path",
         tried);
  }
  resolve(g_cupti.register_callbacks, "cuptiActivityRegisterCallbacks");
  resolve(g_cupti.enable, "cuptiActivityEnable");
  resolve(g_cupti.flush_all, "cuptiActivityFlushAll");
  resolve(g_cupti.next_record, "cuptiActivityGetNextRecord");
  resolve(g_cupti.timestamp, "cuptiGetTimestamp");
  resolve(g_cupti.result_string, "cuptiGetResultString");
  check(g_cupti.register_callbacks(buffer_requested, buffer_completed), "cuptiActivityRegisterCallbacks");
  check(g_cupti.enable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "enabling kernel activity");
  g_active = true;
}

bool cupti_active() { return g_active; }

uint64_t cupti_now_ns() {
  if (!g_active) fail("kernel trace: not started");
  uint64_t t = 0;
  check(g_cupti.timestamp(&t), "cuptiGetTimestamp");
  return t;
}

std::vector<KernelSpan> cupti_take(uint64_t t0, uint64_t t1) {
  if (!g_active) fail("kernel trace: not started");
  check(g_cupti.flush_all(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED), "cuptiActivityFlushAll");
  std::vector<KernelSpan> all;
  {
    Store& st = store();
    std::lock_guard<std::mutex> lock(st.mutex);
    all.swap(st.spans);
  }
  std::vector<KernelSpan> out;
  for (KernelSpan& k : all) {
    if (k.start_ns >= t0 && (t1 == 0 || k.end_ns <= t1)) out.push_back(std::move(k));
  }
  return out;
}

}  // namespace imp::cuda

#endif  // IMP_HAVE_CUPTI_HEADERS
