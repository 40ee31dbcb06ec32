#!/usr/bin/env bash
# Static cost of the tensor-core decode GEMV, no GPU needed: compiles gemv_mma_bulk.cu for
# sm_90 and counts the SASS instructions of each kernel's consumer loop (from the stage's
# mbarrier wait to its release: one unit = 16 rows × 64 payload bytes per warp), by opcode.
# With the loads on the TMA the 4-bit loops are issue-bound, so this count tracks their
# measured bandwidth (docs/benchmarks.md, session 7). cuobjdump and nvdisasm come from
# NVIDIA's PyPI wheels (the Debian toolkit here ships without them), unpacked into .venv-sass/.
#   bash scripts/sass-gemv-loop.sh [regex on "Q4_0 tiles=1 swiglu=0"-style names]
set -euo pipefail
cd "$(dirname "$0")/.."
V=.venv-sass
if [ ! -x "$V/bin/cuobjdump" ] || [ ! -x "$V/bin/nvdisasm" ]; then
  mkdir -p "$V/bin" "$V/wheels"
  for tool in cuobjdump nvdisasm; do
    python3 -m pip download -q --no-deps -d "$V/wheels" "nvidia-cuda-$tool"
    python3 -m zipfile -e "$V"/wheels/nvidia_cuda_${tool}-*.whl "$V/wheels/x"
    cp "$(find "$V/wheels/x" -type f -name "$tool" | head -1)" "$V/bin/" && chmod +x "$V/bin/$tool"
  done
fi
export PATH="$PWD/$V/bin:$PATH"
obj=$(mktemp --suffix=.o)
trap 'rm -f "$obj"' EXIT
nvcc -std=c++17 -arch=sm_90 -O3 -Isrc --expt-relaxed-constexpr -c src/backends/cuda/gemv_mma_bulk.cu -o "$obj"
"$V/bin/cuobjdump" -sass "$obj" | python3 -c '
import re, sys, collections
pattern = re.compile(sys.argv[1])
kernels, name = {}, None
for line in sys.stdin:
    m = re.search(r"Function : (\S+)", line)
    if m:
        name = m.group(1); kernels[name] = []; continue
    m = re.search(r"/\*[0-9a-f]{4,}\*/\s+(.*?);", line)
    if name and m: kernels[name].append(m.group(1))
for name, ins in sorted(kernels.items()):
    short = re.sub(r".*gemv_mma_bulk_kernelI", "", name)
    m = re.search(r"(Q4_0|Q4_K|Q5_K|Q6_K|Q8_0|Nvfp4Ckpt|Mxfp4Ckpt|Fp8MmaILb[01])\w*?ELi(\d)ELb(\d)", short)
    if m: short = {"Fp8MmaILb0": "FP8 tensor", "Fp8MmaILb1": "FP8 channel"}.get(m.group(1), m.group(1)) + f" tiles={m.group(2)} swiglu={m.group(3)}"
    if not pattern.search(short): continue
    h = next((i for i, s in enumerate(ins) if "HMMA" in s), None)
    if h is None: continue
    a = max(i for i, s in enumerate(ins[:h]) if "SYNCS.PHASECHK" in s)
    b = next(i for i in range(h, len(ins)) if "SYNCS.ARRIVE" in ins[i])
    ops = collections.Counter(re.sub(r"^@!?U?P\w+\s+", "", s).split()[0].split(".")[0] for s in ins[a:b + 1])
    print(f"{short[:34]:<36}{b - a + 1:>5}  " + " ".join(f"{k} {v}" for k, v in ops.most_common(int(__import__("os").environ.get("TOPN", "8")))))
' "${1:-.}"
