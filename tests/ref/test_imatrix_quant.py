"""Importance-weighted GGUF quantizers (src/quant/weighted_ggml.cc): byte-identical to
ggml_quantize_chunk called WITH an importance matrix, the path llama-quantize --imatrix
takes (ggml-quants.c quantize_row_<type>_impl), on random rows of awkward block counts and
random positive importances spanning several decades (plus exact-zero importances)."""
import ctypes

import gguf
import numpy as np
import pytest

import ggml_oracle
import imp_capi

QT = gguf.GGMLQuantizationType
TYPES = {"q2_k": (QT.Q2_K, 256), "q3_k": (QT.Q3_K, 256), "q4_k": (QT.Q4_K, 256), "q5_k": (QT.Q5_K, 256),
         "q6_k": (QT.Q6_K, 256), "iq4_xs": (QT.IQ4_XS, 256), "iq4_nl": (QT.IQ4_NL, 32), "q4_0": (QT.Q4_0, 32),
         "q4_1": (QT.Q4_1, 32), "q5_0": (QT.Q5_0, 32), "q5_1": (QT.Q5_1, 32)}
SHAPES = [(1, 1), (3, 3), (2, 17), (5, 37)]  # (rows, blocks per row)


def imp_weighted(name: str, x: np.ndarray, qw: np.ndarray) -> np.ndarray:
    rows, cols = x.shape
    nd, _, _ = imp_capi.plane_bytes(name, rows, cols)
    out = np.zeros(nd, np.uint8)
    x = np.ascontiguousarray(x, np.float32)
    qw = np.ascontiguousarray(qw, np.float32)
    rc = imp_capi.lib().imp_quantize_weighted(imp_capi.fid(name), x.ctypes.data_as(ctypes.c_void_p),
                                              ctypes.c_int64(rows), ctypes.c_int64(cols),
                                              qw.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p))
    imp_capi._check(rc)
    return out


def sample(rng, rows: int, cols: int):
    x = (rng.standard_normal((rows, cols)) * np.exp2(rng.uniform(-6, 3, (rows, 1)))).astype(np.float32)
    x[rng.random(x.shape) < 0.02] = 0.0
    x.flat[rng.integers(x.size)] *= 30  # one outlier
    qw = np.exp(rng.uniform(-6, 4, cols)).astype(np.float32)  # mean x² of activations
    qw[rng.random(cols) < 0.05] = 0.0
    return x, qw


@pytest.mark.parametrize("name", sorted(TYPES))
@pytest.mark.parametrize("rows,blocks", SHAPES)
def test_weighted_bytes_match_ggml(name, rows, blocks):
    qt, qk = TYPES[name]
    rng = np.random.default_rng([rows, blocks, int(qt)])
    cols = blocks * qk
    x, qw = sample(rng, rows, cols)
    bb = imp_capi.lib().imp_format_block_bytes(imp_capi.fid(name))
    want = ggml_oracle.quantize_chunk(int(qt), x, rows, cols, bb, imp_capi.lib().imp_format_block_elems(imp_capi.fid(name)),
                                      imatrix=qw)
    got = imp_weighted(name, x, qw)
    assert got.shape == want.shape
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"{name}: {bad.size} bytes differ, first at {bad[0]}"


@pytest.mark.parametrize("name", ["q4_k", "iq4_xs", "q4_0"])
def test_importance_lowers_weighted_error(name):
    """The point of the imatrix: the error Σ_j qw_j·(w − ŵ)² falls against the unweighted
    quantizer when the importance is very uneven."""
    qt, qk = TYPES[name]
    rng = np.random.default_rng(7)
    rows, cols = 64, 4 * qk
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    qw = np.exp(rng.uniform(-5, 5, cols)).astype(np.float32)
    deq = lambda d: gguf.quants.dequantize(d.reshape(rows, -1), qt).reshape(rows, cols)
    plain = imp_capi.quantize(name, x).data
    weighted = imp_weighted(name, x, qw)
    err = lambda d: float(((deq(d) - x) ** 2 * qw).sum())
    assert err(weighted) < 0.9 * err(plain)


def test_unsupported_format_is_an_error():
    x = np.ones((1, 32), np.float32)
    with pytest.raises(imp_capi.ImpError, match="no importance-weighted quantizer"):
        imp_weighted("q8_0", x, np.ones(32, np.float32))
