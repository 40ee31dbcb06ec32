"""Independent numpy reference forward pass for the llama family in GGUF files.

Written from the published architecture (Llama: pre-norm RMSNorm, rotary position
embedding, grouped-query causal attention, SwiGLU MLP; Qwen2 adds q/k/v biases, Qwen3 adds
per-head q/k RMSNorm), not from imp's C++. Weights are dequantized with gguf-py and all
math runs in float64.

RoPE pairing (../shared/specs/formats.md §4.7): llama.cpp's converter permutes the Q/K rows
of llama/mistral so that rotation applies to adjacent pairs (2i, 2i+1); qwen2/qwen3 are
stored unpermuted and rotate (i, i + head_dim/2).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gguf import GGUFReader
from gguf import quants


def _field(r: GGUFReader, key: str, default=None):
    f = r.fields.get(key)
    if f is None:
        return default
    v = f.parts[f.data[0]]
    if v.dtype == np.uint8 and len(f.data) == 1 and len(v) > 1:  # string
        return bytes(v).decode()
    return v[0].item() if len(v) == 1 else v


@dataclass
class LlamaRef:
    arch: str
    n_layer: int
    n_head: int
    n_kv: int
    head_dim: int
    eps: float
    theta: float
    w: dict[str, np.ndarray]
    types: dict[str, int]
    mins: dict[str, np.ndarray]  # Q4_1 weights: (rows, blocks) block minimums
    # Emulate a CPU dot product that pairs block-quantized weights with 8-bit activations
    # (ggml's Q8_0/Q8_1: per 32 elements d = amax/127, q = round(x/d)). imp's fast path does
    # this; its error (~1e-2 of the logits) dwarfs everything else, so the fast path is
    # checked against this emulation and the exact reference path against act_q8=False.
    act_q8: bool = False

    @staticmethod
    def load(path: str) -> "LlamaRef":
        r = GGUFReader(path)
        arch = _field(r, "general.architecture")
        n_embd = _field(r, f"{arch}.embedding_length")
        n_head = _field(r, f"{arch}.attention.head_count")
        w, types, mins = {}, {}, {}
        for t in r.tensors:
            types[t.name] = int(t.tensor_type)
            if int(t.tensor_type) == 3:  # Q4_1: keep the per-block mins (f16 at byte 2 of 20)
                blocks = np.asarray(t.data, dtype=np.uint8).reshape(-1, 20)
                mins[t.name] = blocks[:, 2:4].copy().view(np.float16).astype(np.float64).reshape(
                    int(t.shape[1]) if len(t.shape) > 1 else 1, -1)
            a = quants.dequantize(t.data, t.tensor_type).astype(np.float64)
            w[t.name] = a.reshape([int(d) for d in reversed(t.shape)])
        return LlamaRef(arch=arch, n_layer=_field(r, f"{arch}.block_count"), n_head=n_head,
                        n_kv=_field(r, f"{arch}.attention.head_count_kv", n_head),
                        head_dim=_field(r, f"{arch}.attention.key_length", n_embd // n_head),
                        eps=float(_field(r, f"{arch}.attention.layer_norm_rms_epsilon")),
                        theta=float(_field(r, f"{arch}.rope.freq_base", 10000.0)), w=w, types=types, mins=mins)

    def _mm(self, x, name):
        """x (T, cols) @ W(name).T, W (rows, cols)."""
        if self.act_q8 and self.types[name] not in (0, 1, 30):  # not F32/F16/BF16
            blocks = x.astype(np.float32).reshape(x.shape[0], -1, 32)
            # ggml's order in float32: d = amax/127, id = 1/d, q = roundf(x·id) (half away from
            # zero); x/d or round-half-even would flip codes that sit on a rounding boundary.
            d = np.abs(blocks).max(axis=-1, keepdims=True) / np.float32(127.0)
            inv = np.divide(np.float32(1.0), d, out=np.zeros_like(d), where=d > 0)
            xs = blocks * inv
            q = np.sign(xs) * np.floor(np.abs(xs) + np.float32(0.5))
            d16 = d.astype(np.float16).astype(np.float64)  # Q8_0/Q8_1 store d as f16
            y = (q * d16).reshape(x.shape) @ self.w[name].T
            if name in self.mins:
                # Q4_1·Q8_1 adds m·s per block with s = f16(d·Σq) (d unrounded), where the
                # dequantized product above has m·f16(d)·Σq.
                sq = q.sum(axis=-1).astype(np.float64)
                s16 = (d[..., 0] * sq.astype(np.float32)).astype(np.float16).astype(np.float64)
                y += (s16 - d16[..., 0] * sq) @ self.mins[name].T
            return y
        return x @ self.w[name].T

    def _rmsnorm(self, x, g):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * g

    def _rope(self, x):  # x: (T, heads, hd); positions 0..T-1
        T, _, hd = x.shape
        i = np.arange(hd // 2)
        ang = np.arange(T)[:, None] * self.theta ** (-2.0 * i / hd)  # (T, hd/2)
        c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        if self.arch in ("llama", "mistral"):
            a, b = x[..., 0::2], x[..., 1::2]
        else:
            a, b = x[..., : hd // 2], x[..., hd // 2:]
        ra, rb = a * c - b * s, a * s + b * c
        out = np.empty_like(x)
        if self.arch in ("llama", "mistral"):
            out[..., 0::2], out[..., 1::2] = ra, rb
        else:
            out[..., : hd // 2], out[..., hd // 2:] = ra, rb
        return out

    def logits(self, tokens: list[int], last_only: bool = False) -> np.ndarray:
        """Logits (T, n_vocab) of every position of `tokens` (or (1, n_vocab): the last)."""
        w, T, hd = self.w, len(tokens), self.head_dim
        x = w["token_embd.weight"][tokens]
        mask = np.triu(np.full((T, T), -np.inf), k=1)
        for l in range(self.n_layer):
            p = f"blk.{l}."
            h = self._rmsnorm(x, w[p + "attn_norm.weight"])
            q, k, v = (self._mm(h, p + f"attn_{n}.weight") + w.get(p + f"attn_{n}.bias", 0.0) for n in "qkv")
            q, k, v = q.reshape(T, self.n_head, hd), k.reshape(T, self.n_kv, hd), v.reshape(T, self.n_kv, hd)
            if p + "attn_q_norm.weight" in w:
                q = self._rmsnorm(q, w[p + "attn_q_norm.weight"])
                k = self._rmsnorm(k, w[p + "attn_k_norm.weight"])
            q, k = self._rope(q), self._rope(k)
            group = self.n_head // self.n_kv
            k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
            s = np.einsum("thd,shd->hts", q, k) / np.sqrt(hd) + mask
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            s /= s.sum(axis=-1, keepdims=True)
            att = np.einsum("hts,shd->thd", s, v).reshape(T, self.n_head * hd)
            x = x + self._mm(att, p + "attn_output.weight")
            h = self._rmsnorm(x, w[p + "ffn_norm.weight"])
            g, u = self._mm(h, p + "ffn_gate.weight"), self._mm(h, p + "ffn_up.weight")
            x = x + self._mm(g / (1.0 + np.exp(-g)) * u, p + "ffn_down.weight")
        if last_only:
            x = x[-1:]
        out = "output.weight" if "output.weight" in w else "token_embd.weight"
        return self._mm(self._rmsnorm(x, w["output_norm.weight"]), out)

    def greedy(self, tokens: list[int], n: int) -> list[int]:
        seq = list(tokens)
        for _ in range(n):
            seq.append(int(np.argmax(self.logits(seq, last_only=True)[-1])))
        return seq[len(tokens):]
