#!/usr/bin/env bash
# Static cost of the fused-dequantization prefill GEMM (gemm_dequant_sm90a.cu), no GPU
# needed: compiles it for sm_90a and counts, per kernel, the SASS instructions of one K-loop
# step (one kMma unit: from one wgmma wait — WARPGROUP.DEPBAR — to the next), by opcode.
# A warp issues its step once per unit, and each scheduler holds two warps (one per
# warpgroup), while the unit's wgmmas take 128 rows × BN tokens × U columns / 2048 MAC per
# clock (an H100 SM's f16 rate) = BN·U/16 cycles: "issue share" = 32 · instructions / (BN·U)
# is the fraction of each scheduler's cycles the decode and copies need at the tensor rate
# (near or above 1 the kernel cannot reach it). "lead 2": the variant that decodes with two
# units of wgmmas queued (IMP_CUDA_FUSED_GEMM_LEAD=2). MXFP4 counts both of its scale paths.
# cuobjdump comes from NVIDIA's PyPI wheel into .venv-sass/ (scripts/sass-gemv-loop.sh).
#   bash scripts/sass-gemm-loop.sh
set -euo pipefail
cd "$(dirname "$0")/.."
V=.venv-sass
if [ ! -x "$V/bin/cuobjdump" ]; then
  mkdir -p "$V/bin" "$V/wheels"
  python3 -m pip download -q --no-deps -d "$V/wheels" nvidia-cuda-cuobjdump
  python3 -m zipfile -e "$V"/wheels/nvidia_cuda_cuobjdump-*.whl "$V/wheels/x"
  cp "$(find "$V/wheels/x" -type f -name cuobjdump | head -1)" "$V/bin/" && chmod +x "$V/bin/cuobjdump"
fi
obj=$(mktemp --suffix=.o)
trap 'rm -f "$obj"' EXIT
nvcc -std=c++17 -gencode=arch=compute_90a,code=sm_90a -O3 -Isrc --expt-relaxed-constexpr -DIMP_HAVE_CUDA=1 \
  -c src/backends/cuda/gemm_dequant_sm90a.cu -o "$obj"
"$V/bin/cuobjdump" -sass "$obj" | python3 -c '
import re, sys, collections
names = {"8": "Q4_0", "12": "Q8_0", "16": "Q4_K", "17": "Q5_K", "18": "Q6_K", "24": "NVFP4_CKPT", "25": "MXFP4_CKPT"}
units = {"Q8_0": 64}
kernels, name = {}, None
for line in sys.stdin:
    m = re.search(r"Function : \S*gemm_dequant_kernelILNS_8FormatIdE(\d+)ELi(\d+)ELi(\d+)E", line)
    if m:
        name = (names.get(m.group(1), m.group(1)), int(m.group(2)), int(m.group(3))); kernels[name] = []; continue
    if re.search(r"Function : ", line): name = None; continue
    m = re.search(r"/\*[0-9a-f]{4,}\*/\s+(@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)[^;]*;", line)
    if name and m: kernels[name].append((m.group(2), line))
print("%-27s%11s%12s  top opcodes" % ("kernel", "step instr", "issue share"))
for (fmt, bn, lead), ins in sorted(kernels.items()):
    marks = [i for i, (op, l) in enumerate(ins) if op == "WARPGROUP" and "DEPBAR" in l]
    if len(marks) < 2: print(f"{fmt} {bn}: loop not found"); continue
    step = [op for op, _ in ins[marks[0] + 1:marks[1] + 1]]
    c = collections.Counter(step)
    u = units.get(fmt, 128)
    share = 32 * len(step) / (bn * u)
    label = "%s BN=%d%s" % (fmt, bn, " lead 2" if lead == 2 else "")
    print("%-27s%11d%12.2f  " % (label, len(step), share) + " ".join("%s %d" % kv for kv in c.most_common(8)))
'
