#!/usr/bin/env bash
# Create/refresh .venv with everything koroberta needs. Idempotent: a second run with the same inputs does nothing.
#
# Knobs (env vars):
#   PYTHON=python3.11            interpreter for the venv (3.10-3.12; fairseq-fixed is tested here on 3.11)
#   VENV=.venv                   where the venv lives
#   TORCH_SPEC=torch==2.13.0     the torch requirement installed first and then held fixed. On a machine without
#                                CUDA the local wheel is the CPU build. GPU users: keep the pin and point pip at a CUDA
#                                index, e.g.  TORCH_SPEC=torch==2.13.0 PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cu128
#   EXTRAS=dev                   pip extras of the project (dev = pytest; bench = wikiextractor for benchmarks)
#
# Why the order: fairseq-fixed compiles C++/Cython extensions against the *installed* torch and numpy, so it must be
# built with --no-build-isolation after them (~4 min on 2 cores; pip caches the wheel, later venvs reuse it).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-.venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
EXTRAS=${EXTRAS:-dev}

want="$(cat pyproject.toml requirements/constraints.txt scripts/setup_env.sh | sha256sum | cut -c1-16) $TORCH_SPEC $EXTRAS"
stamp="$VENV/.koroberta-env"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VENV/bin/python" -c "import koroberta, fairseq" 2>/dev/null; then
    exit 0
fi

command -v "$PYTHON" >/dev/null || { echo "error: $PYTHON not found — install Python 3.11 or set PYTHON=/path/to/python3.x" >&2; exit 2; }
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@"; }
echo "[setup] installing into $VENV (torch: $TORCH_SPEC) ..." >&2
torch_pin=$(mktemp); trap 'rm -f "$torch_pin"' EXIT
echo "$TORCH_SPEC" > "$torch_pin"
pip install -q -U "pip>=24" "setuptools>=68,<82" wheel 2>&1 | grep -v "^WARNING: Location" >&2 || true
# 1. torch + build deps of fairseq
pip install -q "$TORCH_SPEC" -c requirements/constraints.txt numpy cython ninja 2>&1 | grep -v "^WARNING: Location" >&2 || true
# 2. fairseq (upstream main + dataclass fix for Python 3.11), built against the torch above.
#    --no-deps + its dependency list minus torchaudio: pip would otherwise pull a torchaudio built for another torch,
#    whose C extension fails to load and takes `import transformers` down with it. fairseq only needs torchaudio for
#    speech tasks, which we never import.
pip install -q --no-build-isolation --no-deps fairseq-fixed==0.12.3.1 2>&1 | grep -v "^WARNING: Location" >&2 || true
pip install -q -c "$torch_pin" -c requirements/constraints.txt hydra-core==1.3.2 omegaconf==2.3.0 \
    cffi regex sacrebleu bitarray scikit-learn packaging tqdm 2>&1 \
    | grep -v -e "^WARNING: Location" -e "requires torchaudio" -e "^ERROR: pip's dependency resolver" >&2 || true
if "$VENV/bin/python" -c "import importlib.util as u; exit(0 if u.find_spec('torchaudio') else 1)" \
   && ! "$VENV/bin/python" -c "import torchaudio" 2>/dev/null; then
    pip uninstall -q -y torchaudio >&2   # a venv from an older setup: drop the broken build
fi
# 3. the project and its pure-Python deps, torch held at the pin
# (pip's resolver then reports "fairseq-fixed requires torchaudio, which is not installed": expected, see step 2)
pip install -q -c "$torch_pin" -c requirements/constraints.txt -e ".[$EXTRAS]" 2>&1 \
    | grep -v -e "^WARNING: Location" -e "requires torchaudio" -e "^ERROR: pip's dependency resolver" >&2 || true
"$VENV/bin/python" -c "import koroberta, fairseq, sentencepiece, kss, transformers; from transformers import pipeline, RobertaForMaskedLM" \
    || { echo "error: environment check failed in $VENV — delete $VENV and rerun scripts/setup_env.sh" >&2; exit 1; }
echo "$want" > "$stamp"
echo "[setup] done: $("$VENV/bin/python" -c 'import torch, fairseq, transformers; print("torch", torch.__version__, "fairseq", fairseq.__version__, "transformers", transformers.__version__)')" >&2
