"""256-element GGUF types (Q2_K..Q6_K, IQ4_XS, and the Q8_K activation format):
bit-exact dequantization against gguf-py and ggml's C code, byte-identical reference
quantization against ggml (what llama-quantize runs without an imatrix), and the scalar
vec_dot against a float64 dot of the dequantized weight and Q8_K activation rows."""
import gguf
import numpy as np
import pytest

import ggml_oracle
import imp_capi
from conftest import AWKWARD_BLOCK_COUNTS
from gguf_blocks import random_blocks

QT = gguf.GGMLQuantizationType
QK_K = 256
# imp format name -> gguf-py / ggml type
WEIGHTS = {"q2_k": QT.Q2_K, "q3_k": QT.Q3_K, "q4_k": QT.Q4_K, "q5_k": QT.Q5_K, "q6_k": QT.Q6_K,
           "iq4_xs": QT.IQ4_XS}
# Types whose no-imatrix quantizer is quantize_row_<type>_ref (IQ4_XS is not: llama-quantize
# runs quantize_iq4_xs with ntry 7, reached through ggml_quantize_chunk).
ROW_REF = {"q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "q8_k"}
ROW_SHAPES = [(1, 1), (2, 3), (3, 17), (4, 37)]


def ggml_name(name: str) -> str:
    return name.replace("_k", "_K")


def block_bytes(name: str) -> int:
    return imp_capi.lib().imp_format_block_bytes(imp_capi.fid(name))


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.float32).view(np.uint32)


def weights_like(rng, rows: int, cols: int) -> np.ndarray:
    """Gaussian rows with per-row scales 2^-8..2^4, exact zeros, exact ties, one outlier."""
    x = rng.standard_normal((rows, cols)) * np.exp2(rng.uniform(-8, 4, (rows, 1)))
    x = x.astype(np.float32)
    # Values on a quarter grid (times the row scale's power of two) make ties of the
    # rounding steps likely.
    x[:, ::7] = np.round(x[:, ::7] * 4) / 4
    x[0, :16] = 0.0  # an all-zero 16-element sub-block
    if cols >= 2 * QK_K:
        x[0, QK_K:2 * QK_K] = 0.0  # an all-zero super-block
    x[0, 40:56] = 1.5  # a constant sub-block (max == min inside it)
    if rows > 1:
        x[1, int(rng.integers(cols))] = 1e4 * np.abs(x[1]).max()  # one huge outlier
    return x


@pytest.mark.parametrize("name", sorted(WEIGHTS))
@pytest.mark.parametrize("n_blocks", AWKWARD_BLOCK_COUNTS)
def test_dequantize_bit_exact_vs_gguf_py(name, n_blocks, rng):
    data = random_blocks(name, n_blocks, rng)
    n = n_blocks * QK_K
    ours = imp_capi.dequantize_bytes(name, data, 1, n).reshape(-1)
    theirs = gguf.quants.dequantize(data, WEIGHTS[name]).reshape(-1)
    np.testing.assert_array_equal(bits(ours), bits(theirs))


@pytest.mark.parametrize("name", sorted(WEIGHTS) + ["q8_k"])
@pytest.mark.parametrize("n_blocks", AWKWARD_BLOCK_COUNTS)
def test_dequantize_bit_exact_vs_ggml(name, n_blocks, rng):
    data = random_blocks(name, n_blocks, rng)
    n = n_blocks * QK_K
    ours = imp_capi.dequantize_bytes(name, data, 1, n).reshape(-1)
    theirs = ggml_oracle.dequantize_row(ggml_name(name), data, n)
    np.testing.assert_array_equal(bits(ours), bits(theirs))


@pytest.mark.parametrize("name", sorted(WEIGHTS) + ["q8_k"])
@pytest.mark.parametrize("rows,blocks_per_row", ROW_SHAPES)
def test_quantize_bytes_match_ggml(name, rows, blocks_per_row, rng):
    cols = blocks_per_row * QK_K
    x = weights_like(rng, rows, cols)
    ours = imp_capi.quantize(name, x).data
    size = block_bytes(name)
    if name in ROW_REF:
        theirs = ggml_oracle.quantize_row_ref(ggml_name(name), x.reshape(-1), size, QK_K)
        np.testing.assert_array_equal(ours.reshape(-1, size), theirs.reshape(-1, size))
    if name in WEIGHTS:
        theirs = ggml_oracle.quantize_chunk(int(WEIGHTS[name]), x, rows, cols, size, QK_K)
        np.testing.assert_array_equal(ours.reshape(-1, size), theirs.reshape(-1, size))


@pytest.mark.parametrize("name", sorted(WEIGHTS))
def test_quantize_uniform_and_tiny_rows_match_ggml(name, rng):
    # Degenerate inputs: constant rows, all-negative rows, tiny and large values (not huge:
    # the oracle keeps ggml's assert that nearest_int's argument is below 2^22), ±1 rows.
    rows = [np.full(QK_K, 0.75), -np.abs(rng.standard_normal(QK_K)), rng.standard_normal(QK_K) * 1e-30,
            rng.standard_normal(QK_K) * 1e3, np.where(np.arange(QK_K) % 2 == 0, 1.0, -1.0)]
    x = np.stack(rows).astype(np.float32)
    ours = imp_capi.quantize(name, x).data
    size = block_bytes(name)
    theirs = ggml_oracle.quantize_chunk(int(WEIGHTS[name]), x, x.shape[0], QK_K, size, QK_K)
    np.testing.assert_array_equal(ours.reshape(-1, size), theirs.reshape(-1, size))


@pytest.mark.parametrize("name", sorted(WEIGHTS))
@pytest.mark.parametrize("rows,blocks_per_row", [(1, 1), (3, 3), (5, 17), (2, 37)])
def test_vec_dot_matches_float64_dot_of_dequantized_rows(name, rows, blocks_per_row, rng):
    cols = blocks_per_row * QK_K
    q = imp_capi.quantize(name, weights_like(rng, rows, cols))
    a = (rng.standard_normal(cols) * np.exp2(rng.uniform(-4, 4))).astype(np.float32)
    y = imp_capi.matvec(q, a, fast=False)
    # Reference: gguf-py's dequantization of the weights, ggml's of the Q8_K activation.
    w64 = gguf.quants.dequantize(q.data, WEIGHTS[name]).reshape(rows, cols).astype(np.float64)
    act = ggml_oracle.quantize_row_ref("q8_K", a, block_bytes("q8_k"), QK_K)
    a64 = ggml_oracle.dequantize_row("q8_K", act, cols).astype(np.float64)
    ref = w64 @ a64
    # Relative to the sum of |terms|, so that cancellation in the dot does not inflate it.
    scale = np.abs(w64) @ np.abs(a64)
    np.testing.assert_array_less(np.abs(y.astype(np.float64) - ref), 1e-5 * scale + 1e-30)


@pytest.mark.parametrize("name", sorted(WEIGHTS))
def test_bad_input_is_an_error_not_a_crash(name):
    with pytest.raises(imp_capi.ImpError, match="multiple of the block size"):
        imp_capi.quantize(name, np.zeros((1, QK_K + 32), np.float32))
    with pytest.raises(imp_capi.ImpError, match="data plane holds"):
        imp_capi.dequantize_bytes(name, np.zeros(5, np.uint8), 1, QK_K)
