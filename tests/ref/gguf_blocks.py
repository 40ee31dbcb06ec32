"""Random GGUF blocks for exactness tests: random bytes for every quantized payload, with
the f16/f32/E8M0/UE4M3 scale fields replaced by finite values so that every decoded value
is a number (a NaN compares unequal to itself and would hide nothing)."""
from __future__ import annotations

import numpy as np

# (block bytes, offsets of f16 scale fields) per GGUF type name.
F16_FIELDS = {
    "q4_0": (18, [0]), "q4_1": (20, [0, 2]), "q5_0": (22, [0]), "q5_1": (24, [0, 2]),
    "q8_0": (34, [0]), "q8_1": (36, [0, 2]), "q2_k": (84, [80, 82]), "q3_k": (110, [108]),
    "q4_k": (144, [0, 2]), "q5_k": (176, [0, 2]), "q6_k": (210, [208]), "iq4_nl": (18, [0]),
    "iq4_xs": (136, [0]), "mxfp4": (17, []), "nvfp4": (36, []), "q8_k": (292, []),
}


def finite_f16(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random finite f16 scales of realistic magnitude (2^-20 .. 2^4), both signs."""
    mag = rng.uniform(-20, 4, n)
    sign = rng.choice([-1.0, 1.0], n)
    return (sign * np.exp2(mag)).astype(np.float16)


def random_blocks(name: str, n_blocks: int, rng: np.random.Generator) -> np.ndarray:
    size, fields = F16_FIELDS[name]
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for off in fields:
        raw[:, off:off + 2] = finite_f16(rng, n_blocks).view(np.uint8).reshape(n_blocks, 2)
    if name == "q8_k":  # f32 d at offset 0
        d = (rng.choice([-1.0, 1.0], n_blocks) * np.exp2(rng.uniform(-20, 4, n_blocks))).astype(np.float32)
        raw[:, 0:4] = d.view(np.uint8).reshape(n_blocks, 4)
    if name == "mxfp4":  # E8M0 at offset 0: any byte but 0xFF decodes to a finite power of two
        raw[:, 0] = rng.integers(0, 255, n_blocks, dtype=np.uint8)
    if name == "nvfp4":  # four UE4M3 scales at 0..3: avoid 0x7F/0xFF (NaN in E4M3)
        s = rng.integers(0, 0x7F, (n_blocks, 4), dtype=np.uint8)
        raw[:, 0:4] = s
    return raw.reshape(-1)
