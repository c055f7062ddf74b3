#!/usr/bin/env bash
# Stage 4: pretrain RoBERTa with fairseq-train on one machine (CPU or one/several local GPUs).
#
#   scripts/04_train.sh CONFIG.yaml [DATA_BIN SAVE_DIR] [--dry-run] [train options, e.g. --max-update 500]
#
# Preflight (data-bin, dict/spm agreement, GPUs, recipe batch, disk) runs before anything is launched; the
# fairseq-train command and the effective batch are printed. Rerunning the same command after a crash resumes from
# SAVE_DIR/checkpoint_last.pt. With a pipeline YAML (workdir:), DATA_BIN/SAVE_DIR default to WORKDIR/data-bin and
# WORKDIR/checkpoints. Curves + MFU afterwards: koroberta train report SAVE_DIR
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KOROBERTA="${KOROBERTA:-$here/.venv/bin/koroberta}"
[ -x "$KOROBERTA" ] || KOROBERTA=koroberta
if [ $# -lt 1 ]; then
  sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
exec "$KOROBERTA" train "$@"
