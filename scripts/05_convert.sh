#!/usr/bin/env bash
# fairseq checkpoint -> Hugging Face dir, parity-checked against fairseq.
# usage: scripts/05_convert.sh RUN_DIR   (RUN_DIR holds checkpoints/, spm/, corpus/split/valid.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:?usage: $0 RUN_DIR}
exec .venv/bin/koroberta convert "$RUN/checkpoints/checkpoint_last.pt" "$RUN/spm" "$RUN/hf" \
    --parity-text "$RUN/corpus/split/valid.txt" "${@:2}"
