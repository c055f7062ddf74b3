#!/usr/bin/env bash
# Stage 2: SentencePiece vocab on the train split, ids aligned with fairseq (= spm + 1) and the HF tokenizer.
#
#   scripts/02_spm.sh [SPLIT_DIR] [OUT_DIR] [extra `koroberta spm train` options...]
#   e.g. scripts/02_spm.sh runs/demo/corpus/split runs/demo/spm --vocab-size 8000
#
# Full kowiki: the defaults (unigram, 32000, coverage 0.9995, nmt_nfkc) plus --input-sentence-size 5000000 keep
# training under ~15 min / 8 GB on 16 cores (see bench/results/spm_preprocess.md). Re-running with the same input
# and options does nothing (the output is complete); --force retrains.
set -euo pipefail
cd "$(dirname "$0")/.."
SPLIT_DIR=${1:-runs/koroberta/corpus/split}
OUT_DIR=${2:-runs/koroberta/spm}
shift $(( $# > 2 ? 2 : $# ))
exec .venv/bin/koroberta spm train "$SPLIT_DIR/train.txt" "$OUT_DIR" "$@"
