#!/usr/bin/env bash
# One-node multi-GPU pretraining: koroberta preflights once, then launches
#   torchrun --standalone --nproc-per-node $NGPU -m koroberta.train.entry <fairseq-train args>
#
#   NGPU=8 scripts/pretrain_torchrun.sh CONFIG.yaml DATA_BIN SAVE_DIR [train options]
#
# NGPU (default 8): processes = GPUs on this node. Keep the effective batch of your recipe:
#   sequences/update = batch_size x update_freq x NGPU (the `recipe:` key makes preflight check it).
# torchrun --standalone picks a free rendezvous port itself. koroberta.train.entry passes
# --distributed-rank $RANK --device-id $LOCAL_RANK --distributed-init-method env:// to fairseq (fairseq's own
# torchrun detection divides by the CUDA device count). Resume: rerun the same command.
# On a CPU-only box the same launcher runs NGPU gloo processes (add --device cpu).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KOROBERTA="${KOROBERTA:-$here/.venv/bin/koroberta}"
[ -x "$KOROBERTA" ] || KOROBERTA=koroberta
NGPU="${NGPU:-8}"
if [ $# -lt 3 ]; then
  sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
config="$1" data_bin="$2" save_dir="$3"; shift 3
exec "$KOROBERTA" train "$config" "$data_bin" "$save_dir" --launcher torchrun --ngpus "$NGPU" "$@"
