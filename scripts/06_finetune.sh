#!/usr/bin/env bash
# Fine-tune the export on NSMC and report accuracy / F1.
# usage: scripts/06_finetune.sh RUN_DIR TRAIN_TSV [TEST_TSV]
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:?usage: $0 RUN_DIR TRAIN_TSV [TEST_TSV]}
TRAIN=${2:?usage: $0 RUN_DIR TRAIN_TSV [TEST_TSV]}
TEST_ARGS=()
[ -n "${3:-}" ] && TEST_ARGS=(--test-tsv "$3")
exec .venv/bin/koroberta finetune nsmc "$RUN/hf" "$TRAIN" "$RUN/finetune-nsmc" "${TEST_ARGS[@]}"
