#!/usr/bin/env bash
# Nsight Compute counters of one GEMV kernel on the GPU machine (after scripts/gpu-check.sh
# has configured build-gpu/, or configures it the same way):
#   IMP_PROFILE_FORMAT=q4_0 IMP_PROFILE_SHAPE=4096x14336 IMP_PROFILE_KERNEL=q4_0 bash scripts/gpu-profile.sh
# Prints time, DRAM throughput, issue-slot use, occupancy and the warp stall breakdown.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu-build.sh  # BUILD=build-gpu, OUT (default $BUILD/out), gpu_build
gpu_build profile imp_bench_cuda_gemv || exit 1
for fmt in ${IMP_PROFILE_FORMATS:-q4_0}; do
  for shape in ${IMP_PROFILE_SHAPES:-4096x14336}; do
    echo "=== $fmt $shape"
    "$BUILD/bench/imp_bench_cuda_gemv" --formats "$fmt" --shape "$shape" --runs 50 | tail -n +4
    ncu --clock-control none -k "regex:${IMP_PROFILE_KERNEL:-gemv}" --launch-skip 40 --launch-count 1 \
      --section SpeedOfLight --section Occupancy --section SchedulerStats --section WarpStateStats \
      --metrics gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,smsp__inst_executed.sum \
      "$BUILD/bench/imp_bench_cuda_gemv" --formats "$fmt" --shape "$shape" --runs 50 2>&1 \
      | grep -E "Duration|DRAM Throughput|Memory Throughput|Compute \(SM\)|Issue Slots Busy|Issued Warp|No Eligible|Achieved Occupancy|Theoretical Occupancy|Block Limit|Stall|stall|gpu__time|dram__|inst_executed|Warp Cycles|Active Warps|Eligible Warps" | head -40
  done
done
