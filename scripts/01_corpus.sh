#!/usr/bin/env bash
# Corpus stage on one machine: download (optional) + extract -> clean -> kss split -> train/valid/test.
#   SOURCE=data/demo/kowiki-demo.xml.bz2 OUT=runs/corpus WORKERS=2 scripts/01_corpus.sh
#   (WORKERS=0, the default: the CPUs this process may use; the corpus is the same for any count)
#   DOWNLOAD=1 DATE=20250601 scripts/01_corpus.sh          # fetch kowiki-DATE-pages-articles.xml.bz2 first
set -euo pipefail
KOROBERTA=${KOROBERTA:-.venv/bin/koroberta}
WORKERS=${WORKERS:-0}
OUT=${OUT:-runs/corpus}
CONFIG=${CONFIG:-}
DOWNLOAD=${DOWNLOAD:-0}
WIKI=${WIKI:-kowiki}
DATE=${DATE:-latest}
DUMP_DIR=${DUMP_DIR:-data/dumps}
BASE_URL=${BASE_URL:-https://dumps.wikimedia.org}
if [[ "$DOWNLOAD" == 1 ]]; then
  SOURCE=$("$KOROBERTA" corpus download "$DUMP_DIR" --wiki "$WIKI" --date "$DATE" --base-url "$BASE_URL" | tail -1)
fi
SOURCE=${SOURCE:-data/demo/kowiki-demo.xml.bz2}
"$KOROBERTA" corpus build "$SOURCE" "$OUT" --workers "$WORKERS" ${CONFIG:+--config "$CONFIG"} "$@"
