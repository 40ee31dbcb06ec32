# libFuzzer targets for the safetensors / Hugging Face readers (branch hf). Include this
# file from tests/fuzz/CMakeLists.txt (IMP_BUILD_FUZZ=ON, clang):  include(hf_targets.cmake)
# For coverage feedback inside imp_core, configure the whole build with
#   CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DIMP_BUILD_FUZZ=ON \
#     -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined"
# then run, e.g.
#   build-fuzz/tests/fuzz/fuzz_safetensors -max_total_time=60 tests/fuzz/corpus/safetensors
#   build-fuzz/tests/fuzz/fuzz_hf_config   -max_total_time=60 tests/fuzz/corpus/hf_config
# Without CMake (what the branch was checked with: 60 s each, 0 crashes):
#   clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Isrc src/io/safetensors_reader.cc \
#     src/io/mapped_file.cc tests/fuzz/fuzz_safetensors.cc -lfmt -o fuzz_safetensors
#   clang++ … the same plus src/io/hf_config.cc tests/fuzz/fuzz_hf_config.cc -o fuzz_hf_config
# (copy the seed corpus to a scratch folder first if new inputs should not land in git).
foreach(target fuzz_safetensors fuzz_hf_config)
  add_executable(${target} ${CMAKE_CURRENT_LIST_DIR}/${target}.cc)
  target_link_libraries(${target} PRIVATE imp_core)
  target_compile_options(${target} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(${target} PRIVATE -fsanitize=fuzzer,address,undefined)
endforeach()
