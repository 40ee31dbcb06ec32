"""`imp run` without -m (the demo model, fetched on first use) and the memory line it ends
with (peak RSS; weights mapped from the file vs owned after conversion, per the plan)."""
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

TINY = Path(__file__).resolve().parent.parent / "data" / "hf-tiny-llama"
CACHE = Path(os.environ.get("IMP_MODEL_CACHE", Path.home() / ".cache" / "imp" / "models"))
DEMO = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA3 = CACHE / "gemma-3-270m-q4_k_m.gguf"
MEM = re.compile(r"memory: peak RSS ([\d.]+) MiB \(now ([\d.]+) MiB\) \| weights: ([\d.]+) MiB mapped \((\d+) tensors\), "
                 r"([\d.]+) MiB owned \((\d+)\)")


def imp_binary() -> str:
    b = os.environ.get("IMP_BINARY")
    if not b or not Path(b).exists():
        pytest.skip("IMP_BINARY not set (run through ctest or set it to build/imp)")
    return b


def run(args, env=None):
    return subprocess.run([imp_binary(), "run", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def fake_fetcher(tmp_path: Path, body: str) -> Path:
    s = tmp_path / "fetch.sh"
    s.write_text("#!/usr/bin/env bash\n" + body)
    return s


def test_without_model_fetches_the_demo_model_once(tmp_path):
    """An empty cache: imp runs the fetch script (here a stand-in that logs its arguments
    and links the cached demo model in), then the demo model; a second run does not fetch."""
    demo = CACHE / DEMO
    if not demo.exists():
        pytest.skip(f"{demo} is absent (scripts/fetch-models.sh)")
    cache, log = tmp_path / "cache", tmp_path / "fetch.log"
    script = fake_fetcher(tmp_path, f'echo "$@ $IMP_FETCH_STRICT" >> {log}\nmkdir -p "$IMP_MODEL_CACHE"\n'
                                    f'ln -s {demo} "$IMP_MODEL_CACHE/{DEMO}"\n')
    env = {"IMP_MODEL_CACHE": str(cache), "IMP_FETCH_SCRIPT": str(script)}
    for _ in range(2):
        p = run(["-p", "Hello", "-n", "4", "--temp", "0", "-t", "2"], env)
        assert p.returncode == 0, p.stderr
        assert "generation: 4 tokens" in p.stderr
    assert log.read_text() == "smollm2 1\n"  # fetched once, strictly, only the demo model


def test_without_model_fetch_failure_is_an_error(tmp_path):
    env = {"IMP_MODEL_CACHE": str(tmp_path / "cache"), "IMP_FETCH_SCRIPT": str(fake_fetcher(tmp_path, "exit 3\n"))}
    p = run(["-p", "Hello"], env)
    assert p.returncode == 1 and "fetching the demo model failed" in p.stderr, p.stderr
    env["IMP_FETCH_SCRIPT"] = str(tmp_path / "missing.sh")
    p = run(["-p", "Hello"], env)
    assert p.returncode == 1 and "missing.sh" in p.stderr and "-m MODEL" in p.stderr, p.stderr


def plan_bytes(model: str, storage: str) -> tuple[int, int]:
    rows = json.loads(subprocess.run([imp_binary(), "plan", "-m", model, "--storage", storage, "--json"],
                                     check=True, capture_output=True, text=True).stdout)["rows"]
    mapped = sum(r["bytes"] for r in rows if r["tier"] == "mapped")
    return mapped, sum(r["bytes"] for r in rows) - mapped


@pytest.mark.parametrize("model", ["tiny", "gemma3"])
@pytest.mark.parametrize("storage", ["mapped", "f32"])
def test_memory_line_matches_plan(model, storage):
    path = TINY if model == "tiny" else GEMMA3
    if not path.exists():
        pytest.skip(f"{path} is absent")
    p = run(["-m", str(path), "--tokens", "2,3", "-n", "1", "-t", "2", "--storage", storage])
    assert p.returncode == 0, p.stderr
    m = MEM.search(p.stderr)
    assert m, p.stderr
    peak, now, mapped_mib, n_mapped, owned_mib, n_owned = (float(x) for x in m.groups())
    assert peak >= now > 0
    mapped, owned = plan_bytes(str(path), storage)
    assert abs(mapped_mib - mapped / 2**20) <= 0.05 and abs(owned_mib - owned / 2**20) <= 0.05
    if model == "gemma3" and storage == "mapped":
        # Every gemma3 GGUF tensor runs in its stored format (F32 norms, quantized matrices):
        # nothing is copied, and the process stays far below twice the weights.
        assert n_owned == 0 and owned_mib == 0
        assert peak < 2 * mapped_mib + 200
    if storage == "f32":
        assert owned_mib > mapped_mib
