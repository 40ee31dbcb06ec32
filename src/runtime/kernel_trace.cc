#include "runtime/kernel_trace.h"

#include <algorithm>
#include <map>
#include <regex>

#include <fmt/format.h>

namespace imp {

std::string short_kernel_name(std::string_view demangled) {
  std::string s(demangled);
  for (size_t p; (p = s.find("(anonymous namespace)::")) != std::string::npos;) s.erase(p, 23);
  // The parameter list: the first '(' outside template brackets.
  int depth = 0;
  size_t name_begin = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char ch = s[i];
    if (ch == '<') ++depth;
    if (ch == '>') --depth;
    if (depth == 0 && ch == ' ') name_begin = i + 1;  // after a return type ("void ")
    if (depth == 0 && ch == '(') {
      s.resize(i);
      break;
    }
  }
  if (name_begin < s.size()) s.erase(0, name_begin);
  static const std::regex qualifier(R"([A-Za-z_][A-Za-z0-9_]*::)");
  return std::regex_replace(s, qualifier, "");
}

KernelTrace summarize_kernel_trace(std::vector<KernelSpan> spans, int steps) {
  KernelTrace t;
  t.steps = std::max(1, steps);
  if (spans.empty()) return t;
  std::sort(spans.begin(), spans.end(), [](const KernelSpan& a, const KernelSpan& b) { return a.end_ns < b.end_ns; });
  uint64_t first = spans.front().start_ns;
  for (const KernelSpan& k : spans) first = std::min(first, k.start_ns);
  const uint64_t last = spans.back().end_ns;
  t.window_us = double(last - first) / 1e3;
  t.launches = int64_t(spans.size());

  std::map<std::string, KernelTraceRow> by_name;
  uint64_t prev_end = first;
  for (const KernelSpan& k : spans) {
    KernelTraceRow& r = by_name[short_kernel_name(k.name)];
    ++r.launches;
    r.advance_us += double(k.end_ns - prev_end) / 1e3;  // sorted by end, prev_end ≥ first: never negative
    r.duration_us += double(k.end_ns - std::min(k.start_ns, k.end_ns)) / 1e3;
    prev_end = k.end_ns;
  }
  // Idle: the window minus the union of [start, end) intervals (spans by start time).
  std::sort(spans.begin(), spans.end(), [](const KernelSpan& a, const KernelSpan& b) { return a.start_ns < b.start_ns; });
  uint64_t covered = 0, cur_begin = spans.front().start_ns, cur_end = spans.front().start_ns;
  for (const KernelSpan& k : spans) {
    if (k.start_ns > cur_end) {
      covered += cur_end - cur_begin;
      cur_begin = k.start_ns;
      cur_end = k.start_ns;
    }
    cur_end = std::max(cur_end, k.end_ns);
  }
  covered += cur_end - cur_begin;
  t.idle_us = double((last - first) - covered) / 1e3;

  for (auto& [name, r] : by_name) {
    r.kernel = name;
    t.rows.push_back(std::move(r));
  }
  std::sort(t.rows.begin(), t.rows.end(),
            [](const KernelTraceRow& a, const KernelTraceRow& b) { return a.advance_us > b.advance_us; });
  return t;
}

std::string format_kernel_trace(const KernelTrace& t, std::string_view title, int max_rows) {
  const double n = double(t.steps);
  std::string out = fmt::format(
      "{}, kernel by kernel ({} traced; µs per step; 'advance' = time the kernel moved the timeline,\n"
      "summing to the step; 'duration' = end − start, overlapping under PDL and across streams)\n"
      "{:>10} {:>7} {:>9} {:>9}  {}\n",
      title, t.steps, "advance", "share", "launches", "duration", "kernel");
  double rest_adv = 0, rest_dur = 0;
  int64_t rest_launches = 0;
  for (size_t i = 0; i < t.rows.size(); ++i) {
    const KernelTraceRow& r = t.rows[i];
    if (int(i) < max_rows) {
      std::string name = r.kernel.size() > 90 ? r.kernel.substr(0, 87) + "..." : r.kernel;
      out += fmt::format("{:>10.1f} {:>6.1f}% {:>9.1f} {:>9.1f}  {}\n", r.advance_us / n,
                         t.window_us > 0 ? 100.0 * r.advance_us / t.window_us : 0.0, double(r.launches) / n,
                         r.duration_us / n, name);
    } else {
      rest_adv += r.advance_us, rest_dur += r.duration_us, rest_launches += r.launches;
    }
  }
  if (rest_launches > 0) {
    out += fmt::format("{:>10.1f} {:>6.1f}% {:>9.1f} {:>9.1f}  ({} other kernels)\n", rest_adv / n,
                       t.window_us > 0 ? 100.0 * rest_adv / t.window_us : 0.0, double(rest_launches) / n, rest_dur / n,
                       t.rows.size() - size_t(max_rows));
  }
  out += fmt::format("{:>10.1f} µs per step, {:.1f} launches; no kernel running for {:.1f} µs of it\n", t.window_us / n,
                     double(t.launches) / n, t.idle_us / n);
  return out;
}

}  // namespace imp
