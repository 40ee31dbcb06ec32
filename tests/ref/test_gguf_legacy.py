"""32-element GGUF types: bit-exact dequantization against gguf-py and ggml's C reference,
byte-identical reference quantization against both."""
import gguf
import numpy as np
import pytest

import ggml_oracle
import imp_capi
from conftest import AWKWARD_BLOCK_COUNTS
from gguf_blocks import random_blocks

QT = gguf.GGMLQuantizationType
# imp format name -> gguf-py type (None where gguf-py has no numpy dequantizer)
LEGACY = {"q4_0": QT.Q4_0, "q8_0": QT.Q8_0}
BLOCK = {"q4_0": 32, "q8_0": 32}


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.float32).view(np.uint32)


@pytest.mark.parametrize("name", sorted(LEGACY))
@pytest.mark.parametrize("n_blocks", AWKWARD_BLOCK_COUNTS)
def test_dequantize_bit_exact_vs_gguf_py(name, n_blocks, rng):
    data = random_blocks(name, n_blocks, rng)
    n = n_blocks * BLOCK[name]
    ours = imp_capi.dequantize_bytes(name, data, 1, n).reshape(-1)
    theirs = gguf.quants.dequantize(data, LEGACY[name]).reshape(-1)
    np.testing.assert_array_equal(bits(ours), bits(theirs))


@pytest.mark.parametrize("name", sorted(LEGACY))
def test_dequantize_bit_exact_vs_ggml(name, rng):
    data = random_blocks(name, 257, rng)
    n = 257 * BLOCK[name]
    ours = imp_capi.dequantize_bytes(name, data, 1, n).reshape(-1)
    theirs = ggml_oracle.dequantize_row(name, data, n)
    np.testing.assert_array_equal(bits(ours), bits(theirs))


@pytest.mark.parametrize("name", sorted(LEGACY))
@pytest.mark.parametrize("rows,blocks_per_row", [(1, 1), (3, 17), (5, 37)])
def test_quantize_bytes_match_gguf_py_and_ggml(name, rows, blocks_per_row, rng):
    cols = blocks_per_row * BLOCK[name]
    # Mixed scales per row, some exact zeros and ties, as real weights have.
    x = (rng.standard_normal((rows, cols)) * np.exp2(rng.uniform(-8, 4, (rows, 1)))).astype(np.float32)
    x[:, ::7] = np.round(x[:, ::7] * 4) / 4
    x[0, :BLOCK[name]] = 0.0
    ours = imp_capi.quantize(name, x).data
    np.testing.assert_array_equal(ours, gguf.quants.quantize(x, LEGACY[name]).reshape(-1))
    size = imp_capi.lib().imp_format_block_bytes(imp_capi.fid(name))
    np.testing.assert_array_equal(ours, ggml_oracle.quantize_row_ref(name, x.reshape(-1), size, BLOCK[name]))


def test_spec_sanity_vectors():
    # ../shared/specs/formats.md §2.5, input A
    x = ((np.arange(32) - 16) * 0.25).astype(np.float32)
    q4 = imp_capi.quantize("q4_0", x).data
    assert bytes(q4).hex() == "0038" + "8091" "91a2a2b3b3c4c4d5d5e6e6f7f7f8"
    q8 = imp_capi.quantize("q8_0", x).data
    assert bytes(q8).hex() == ("0828" "81899199a1a9b1b9c0c8d0d8e0e8f0f8" "00081018202830384047" "4f575f676f77")


@pytest.mark.parametrize("name", sorted(LEGACY))
def test_bad_input_is_an_error_not_a_crash(name):
    with pytest.raises(imp_capi.ImpError, match="multiple of the block size"):
        imp_capi.quantize(name, np.zeros((1, BLOCK[name] + 1), np.float32))
    with pytest.raises(imp_capi.ImpError, match="data plane holds"):
        imp_capi.dequantize_bytes(name, np.zeros(5, np.uint8), 1, BLOCK[name])
