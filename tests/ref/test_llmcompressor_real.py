"""An NVFP4 checkpoint written by llm-compressor 0.14 / compressed-tensors 0.19 itself
(tests/data/ckpt/llmcompressor-nvfp4, made on a CPU by scripts/make-llmcompressor-
checkpoint.py from a tiny random Llama, scheme NVFP4A16): imp detects the scheme, inverts
the divisor global scales, decodes every weight exactly, and its ModelOpt-recipe quantizer
lands on the same codes."""
import os
import subprocess
from pathlib import Path

import ml_dtypes
import numpy as np

import imp_capi
from test_modelopt_real import FUSED, read_safetensors

DATA = Path(__file__).resolve().parent.parent / "data" / "ckpt"
E2M1 = np.array([0, .5, 1, 1.5, 2, 3, 4, 6, -0., -.5, -1, -1.5, -2, -3, -4, -6], np.float32)


def test_llmcompressor_nvfp4_decode_and_codes():
    folder = DATA / "llmcompressor-nvfp4"
    tensors = read_safetensors(folder / "model.safetensors")
    ref = np.load(DATA / "llmcompressor-nvfp4-ref.npz")
    names = sorted(k[:-len(".orig")] for k in ref.files if k.endswith(".orig"))
    assert len(names) == 14
    mismatched = total = 0
    for n in names:
        dtype, shape, packed = tensors[n + ".weight_packed"]
        assert dtype == "U8"
        wgs = np.frombuffer(tensors[n + ".weight_global_scale"][2], np.float32).item()
        s = tensors[n + ".weight_scale"][2]
        rows, cols = shape[0], shape[1] * 2
        # compressed-tensors stores the global scale as a divisor (448·6/amax): G = 1/wgs.
        g = np.float32(1) / np.float32(wgs)
        codes = np.frombuffer(packed, np.uint8).reshape(rows, cols // 2)
        vals = np.stack([E2M1[codes & 15], E2M1[codes >> 4]], axis=-1).reshape(rows, cols)
        scale = np.frombuffer(s, ml_dtypes.float8_e4m3fn).astype(np.float32).reshape(rows, cols // 16)
        expect = (vals * np.repeat(scale * g, 16, axis=1)).astype(np.float32)
        out = subprocess.run([os.environ["IMP_BINARY"], "dump", str(folder), n + ".weight"], check=True,
                             capture_output=True).stdout
        got = np.frombuffer(out, np.float32).reshape(rows, cols)
        np.testing.assert_array_equal(got.view(np.uint32), expect.view(np.uint32), err_msg=n)
        # imp's quantizer (ModelOpt's fp32 order) on the original weights, with the fused
        # layers' shared global scale: the same codes and block scales except where the two
        # tools' fp32 evaluation orders round a tie differently (formats.md §6.2).
        prefix, leaf = n.rsplit(".", 2)[0], ".".join(n.rsplit(".", 2)[1:])
        group = next((grp for grp in FUSED if leaf in grp), (leaf,))
        mats = [ref[f"{prefix}.{m}.orig"] for m in group]
        q = imp_capi.quantize("nvfp4_ckpt", np.concatenate(mats, axis=0))
        row0 = sum(m.shape[0] for m in mats[:group.index(leaf)])
        ours = q.data.reshape(q.rows, -1)[row0:row0 + rows]
        assert abs(q.tensor_scale - g) <= 2 * np.spacing(g), n
        mismatched += int((ours.reshape(-1) != np.frombuffer(packed, np.uint8)).sum())
        total += codes.size
    print(f"{mismatched} of {total} packed bytes differ from llm-compressor's")
    assert mismatched <= total // 1000, f"{mismatched} of {total} packed bytes differ"
