#!/usr/bin/env bash
# Stage 3: split text -> fairseq mmap data-bin (train/valid/test .bin/.idx + dict.txt + spm.model).
#
#   scripts/03_preprocess.sh [SPLIT_DIR] [VOCAB_DIR] [OUT_DIR] [extra `koroberta preprocess run` options...]
#   e.g. scripts/03_preprocess.sh runs/demo/corpus/split runs/demo/spm runs/demo/data-bin --workers 2
#
# The default fused path writes spm ids + 1 straight into fairseq's mmap format, byte-identical to
# `fairseq-preprocess --only-source --srcdict dict.txt --dataset-impl mmap` (tests/preprocess proves it);
# --method fairseq runs fairseq-preprocess itself. A dict.txt from another spm run is refused.
set -euo pipefail
cd "$(dirname "$0")/.."
SPLIT_DIR=${1:-runs/koroberta/corpus/split}
VOCAB_DIR=${2:-runs/koroberta/spm}
OUT_DIR=${3:-runs/koroberta/data-bin}
shift $(( $# > 3 ? 3 : $# ))
exec .venv/bin/koroberta preprocess run "$SPLIT_DIR" "$VOCAB_DIR" "$OUT_DIR" "$@"
