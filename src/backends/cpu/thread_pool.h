// ThreadPool — a fixed set of std::thread workers that run one parallel-for at a time.
//
// parallel_for(n, fn) splits [0, n) into one contiguous chunk per thread (the caller's
// thread takes chunk 0) and returns when every chunk is done. Workers sleep on a
// condition variable between calls, so an idle pool costs nothing. The pool never starts
// more threads than std::thread::hardware_concurrency(): more would only oversubscribe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace imp {

class ThreadPool {
 public:
  // n_threads <= 0: one per hardware thread. Values above the hardware count are clamped.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // fn(begin, end) over disjoint chunks covering [0, n). Not reentrant: fn must not call
  // parallel_for on the same pool. Exceptions from fn are rethrown here (the first one).
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn);

  static int hardware_threads();

 private:
  void worker_loop(int index);
  void run_chunk(int index);

  int n_threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_cv_, done_cv_;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  int64_t n_ = 0;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  std::exception_ptr error_;
};

}  // namespace imp
