# Sourced by the GPU-machine scripts (gpu-check, gpu-decode-ab, gpu-profile, gpu-profile-decode)
# from the repository root. Sets BUILD=build-gpu and OUT (default $BUILD/out, created).
# gpu_build TAG TARGET… configures build-gpu/ once — that machine has no network and no -dev
# packages, so fmt / nlohmann / GoogleTest / PCRE2 come from .gpu-deps/ (prepare-gpu-deps.sh;
# carry it with the call) — then builds the targets. Logs go to
# $OUT/TAG-configure.log and $OUT/TAG-build.log. Returns non-zero, with the errors shown, on failure.
BUILD=build-gpu
OUT=${OUT:-$BUILD/out}
mkdir -p "$OUT"

gpu_build() {
  local tag=$1
  shift
  if [ ! -f "$BUILD/build.ninja" ]; then
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DIMP_GPU_CHECK_ONLY=ON -DIMP_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES=90 \
      -DIMP_EXTRA_INCLUDE="$PWD/.gpu-deps/include" -DIMP_GTEST_SOURCE_DIR="$PWD/.gpu-deps/googletest" \
      -DIMP_PCRE2_DIR="$PWD/.gpu-deps/pcre2" > "$OUT/$tag-configure.log" 2>&1 \
      || { tail -30 "$OUT/$tag-configure.log"; echo "CONFIGURE FAILED"; return 1; }
  fi
  timeout 420 ninja -C "$BUILD" -j16 "$@" > "$OUT/$tag-build.log" 2>&1 \
    || { grep -E "error|FAILED" "$OUT/$tag-build.log" | head -40; echo "BUILD FAILED"; return 1; }
}
