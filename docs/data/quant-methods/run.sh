#!/bin/bash
# imp quantize methods on SmolLM2-135M (F32 dequantization of the Q4_1 release), eval via imp kld.
IMP=${IMP:-build/imp}
cd "${WORK:-/tmp/qm}"  # holds smol-f32.gguf (dequant_gguf.py), calib.txt (emma.txt), eval.txt (first 40 kB of prideprejudice.txt), ref.bin, imatrix.gguf
for fmt in ${FORMATS:-q4_0 q4_k_m iq4_xs}; do
  for m in ${METHODS:-rtn imatrix awq gptq}; do
    out=$fmt-$m.gguf
    case $m in
      rtn) extra="";;
      imatrix) extra="--method imatrix --imatrix imatrix.gguf";;
      *) extra="--method $m --calib calib.txt --calib-chunks 4 --ctx 512";;
    esac
    /usr/bin/time -f "%e s wall %U s user" $IMP quantize smol-f32.gguf $out --type $fmt --force --no-progress $extra > res/$fmt-$m.quant.log 2>&1
    $IMP kld -m $out -f eval.txt --ref ref.bin --ctx 512 --chunks 4 --no-progress --json > res/$fmt-$m.json 2> res/$fmt-$m.kld.err
    echo "$fmt $m done $(date +%T)" >> res/progress.txt
    rm -f $out
  done
done
