#include "common/bounded_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "common/error.h"

namespace imp {
namespace {

constexpr size_t kMaxPatternBytes = 1024;
constexpr uint32_t kMatchLimit = 1'000'000;  // backtracking steps: ~10 ms of work at most
constexpr uint32_t kDepthLimit = 10'000;     // nested backtracking frames

}  // namespace

struct BoundedRegex::Impl {
  pcre2_code* code = nullptr;
  pcre2_match_context* ctx = nullptr;
  ~Impl() {
    if (ctx) pcre2_match_context_free(ctx);
    if (code) pcre2_code_free(code);
  }
};

BoundedRegex::BoundedRegex(std::string_view pattern, std::string_view what)
    : pattern_(pattern), what_(what), impl_(std::make_unique<Impl>()) {
  if (pattern.size() > kMaxPatternBytes) {
    fail("{} '{}…': pattern of {} bytes is too long (limit {})", what, pattern.substr(0, 40), pattern.size(),
         kMaxPatternBytes);
  }
  int err = 0;
  PCRE2_SIZE offset = 0;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF, &err, &offset,
                              nullptr);
  if (!impl_->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    fail("{} '{}': not a valid regular expression at offset {} ({})", what, pattern, size_t(offset),
         reinterpret_cast<const char*>(msg));
  }
  impl_->ctx = pcre2_match_context_create(nullptr);
  if (!impl_->ctx) fail("{}: out of memory for a regular expression", what);
  pcre2_set_match_limit(impl_->ctx, kMatchLimit);
  pcre2_set_depth_limit(impl_->ctx, kDepthLimit);
}

BoundedRegex::~BoundedRegex() = default;
BoundedRegex::BoundedRegex(BoundedRegex&&) noexcept = default;
BoundedRegex& BoundedRegex::operator=(BoundedRegex&&) noexcept = default;

bool BoundedRegex::matches(std::string_view subject, bool anchored) const {
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(impl_->code, nullptr);
  if (!md) fail("{}: out of memory for a regular expression match", what_);
  const int rc = pcre2_match(impl_->code, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), 0,
                             anchored ? PCRE2_ANCHORED : 0, md, impl_->ctx);
  pcre2_match_data_free(md);
  if (rc >= 0) return true;
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT) {
    fail("{} '{}': matching '{}' exceeded the backtracking limit (pathological pattern)", what_, pattern_, subject);
  }
  PCRE2_UCHAR msg[256];
  pcre2_get_error_message(rc, msg, sizeof msg);
  fail("{} '{}': matching '{}' failed ({})", what_, pattern_, subject, reinterpret_cast<const char*>(msg));
}

}  // namespace imp
