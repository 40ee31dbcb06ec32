#!/usr/bin/env bash
# The main job on a fresh Debian machine: install, build, and show imp working.
# (Until the runtime lands this runs the formats self-check; it becomes text generation
# on the demo model as the engine grows.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
./build/imp formats --check
