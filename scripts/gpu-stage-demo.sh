#!/usr/bin/env bash
# The demo model on the GPU machine, for CudaForwardE2E.DemoModelMatchesCpu. That machine
# has no network, and a call to it carries at most 64 MiB while the GGUF is 98 MB, so the
# file travels in two halves over two calls to one warm machine:
#   here:  bash scripts/gpu-stage-demo.sh split
#          → .gpu-demo/part-a, .gpu-demo/part-b (ignored by git; ~49 MB each)
#   call 1 carries .gpu-deps and .gpu-demo/part-a (e.g. the usual scripts/gpu-check.sh run);
#   call 2, within the machine's warm window, carries .gpu-demo/part-b and runs
#          bash scripts/gpu-stage-demo.sh join && build-gpu/tests/cuda/imp_cuda_tests \
#            --gtest_filter='CudaForwardE2E.DemoModel*'
# (ignored paths a call does not name stay on the machine between calls, so part-a waits
# there). join writes the model into IMP_MODEL_CACHE (default ~/.cache/imp/models) only when
# both halves are present and the joined file has the sha256 of scripts/fetch-models.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=SmolLM2-135M-Instruct.Q4_1.gguf
SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
CACHE=${IMP_MODEL_CACHE:-$HOME/.cache/imp/models}
case "${1:-}" in
  split)
    [ -f "$CACHE/$NAME" ] || bash scripts/fetch-models.sh smollm2
    mkdir -p .gpu-demo
    size=$(stat -c %s "$CACHE/$NAME")
    half=$(((size + 1) / 2))
    head -c "$half" "$CACHE/$NAME" > .gpu-demo/part-a
    tail -c +"$((half + 1))" "$CACHE/$NAME" > .gpu-demo/part-b
    ls -l .gpu-demo
    ;;
  join)
    if [ -f "$CACHE/$NAME" ] && echo "$SHA  $CACHE/$NAME" | sha256sum --status -c -; then
      echo "demo model: $CACHE/$NAME (present)"
      exit 0
    fi
    for p in a b; do
      [ -f ".gpu-demo/part-$p" ] || { echo "demo model: .gpu-demo/part-$p missing (carry it in this call or the last)"; exit 1; }
    done
    mkdir -p "$CACHE"
    cat .gpu-demo/part-a .gpu-demo/part-b > "$CACHE/$NAME.tmp"
    echo "$SHA  $CACHE/$NAME.tmp" | sha256sum --status -c - \
      || { rm -f "$CACHE/$NAME.tmp"; echo "demo model: the joined halves fail the sha256 check"; exit 1; }
    mv "$CACHE/$NAME.tmp" "$CACHE/$NAME"
    echo "demo model: $CACHE/$NAME (joined)"
    ;;
  *)
    echo "usage: $0 split|join" >&2
    exit 2
    ;;
esac
