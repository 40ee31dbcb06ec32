# Everything comes from Debian packages (scripts/install-deps.sh installs them).
find_package(Threads REQUIRED)
find_package(fmt REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(CLI11 REQUIRED)
# PCRE2 (UTF + Unicode properties) runs the tokenizers' pre-tokenizer regexes.
find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
if(IMP_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(IMP_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()
