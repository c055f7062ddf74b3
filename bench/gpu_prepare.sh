#!/usr/bin/env bash
# Issue 15, step 1 of 2 — run HERE, on a machine with a package index: gather everything bench/gpu_run.sh needs on
# the lent GPU machine, which can reach no registry and receives at most 64 MiB of working tree.
#
#   bash bench/gpu_prepare.sh            # idempotent: finished parts are kept (delete the folders to redo them)
#
# Writes two ignored folders that a device call must name in `carry`:
#   .gpu-wheels/  fairseq-fixed sdist (built there against the image's torch 2.11) + cp312 wheels:
#                 required/  packages the GPU image lacks (KINDS.md's package list): hydra-core, omegaconf,
#                            antlr4-python3-runtime (sdist-only on PyPI, so built here into a py3-none-any wheel),
#                            bitarray
#                 fallback/  sacrebleu and its deps: the image lists them, so gpu_run.sh installs one only if its
#                            module does not import there (a stale list would otherwise cost a whole device call)
#                 fairseq-built-cp312.tar.xz (not made here): what a gpu_run.sh call returns after building fairseq;
#                            copied in here, the next call unpacks it instead of building again
#   .gpu-data/    data-bin/   real kowiki text (../shared, 105 MB shard) -> rough sentence split -> our `spm train`
#                             (32k unigram, the base preset's size) -> our `preprocess run`; sized by TRAIN_MB
#                 parity.txt  valid-split sentences for `koroberta convert --parity-text`
# Versions: requirements/constraints.txt's pins, hydra-core/omegaconf scripts/setup_env.sh's (the tested stack).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}                 # has torch: fairseq's setup.py imports it even to write metadata
TRAIN_MB=${TRAIN_MB:-48}                   # MB of train text: 36 MB gave 6.83M tokens (5.3 bytes/token), 2 B each
SPM_SAMPLE=${SPM_SAMPLE:-300000}           # sentences for spm training (the 48 MB split has ~330k; 1 thread: ~4 min)
THREADS=${THREADS:-1}                      # the dev box's 2 cores are shared
LIMIT_MIB=${LIMIT_MIB:-56}                 # travel limit is 64 MiB; keep room for files others add to the tree
SRC=${SRC:-../shared/data/kowiki-text/kowiki-extracted-AA.txt.xz}
WHL=.gpu-wheels
DATA=.gpu-data
WORK=bench/out/gpu-prep                    # large intermediates (sentence text, splits, spm run): never carried
PLAT=(--only-binary=:all: --python-version 3.12 --implementation cp --abi cp312
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)

[ -x "$PY" ] || { echo "error: $PY not found (make setup first)" >&2; exit 2; }
pin() {  # NAME==VERSION: requirements/constraints.txt's pin, else $2 (hydra-core/omegaconf: scripts/setup_env.sh's)
    local v
    v=$(grep -i "^$1==" requirements/constraints.txt | head -1 | cut -d= -f3)
    echo "$1==${v:-$2}"
}
quiet_pip() {  # pip, with the local index's harmless "Location ... is ignored" warnings dropped; keeps pip's status
    local log rc=0
    log=$(mktemp)
    "$@" >"$log" 2>&1 || rc=$?
    grep -v -e "^WARNING: Location" -e "is ignored: it is neither" "$log" | grep -v "^$" >&2 || true
    rm -f "$log"
    return $rc
}
mkdir -p "$WHL/required" "$WHL/fallback" "$WORK"

# -- 1. wheels ---------------------------------------------------------------------------------------------------
t0=$(date +%s)
quiet_pip python3 -m pip download -q --no-deps "${PLAT[@]}" -d "$WHL/required" \
    "$(pin hydra-core 1.3.2)" "$(pin omegaconf 2.3.0)" "$(pin bitarray)"
ls "$WHL"/required/antlr4_python3_runtime-*.whl >/dev/null 2>&1 || \
    quiet_pip python3 -m pip wheel -q --no-deps --no-binary :all: -w "$WHL/required" "$(pin antlr4-python3-runtime)"
quiet_pip python3 -m pip download -q --no-deps "${PLAT[@]}" -d "$WHL/fallback" \
    "$(pin sacrebleu)" "$(pin portalocker)" "$(pin regex)" "$(pin tabulate)" "$(pin colorama)" "$(pin lxml)"
# --no-build-isolation: pip prepares the sdist's metadata by running setup.py, which imports torch (the venv has it)
ls "$WHL"/fairseq_fixed-0.12.3.1.tar.gz >/dev/null 2>&1 || \
    quiet_pip "$PY" -m pip download -q --no-deps --no-binary :all: --no-build-isolation -d "$WHL" \
        fairseq-fixed==0.12.3.1
# two versions of one package would make `pip install *.whl` refuse the whole set there
dups=$(ls "$WHL"/required "$WHL"/fallback | sed -n 's/^\([A-Za-z0-9_.]*\)-[0-9].*\.whl$/\1/p' | sort | uniq -d)
[ -z "$dups" ] || { echo "error: several versions of: $dups (remove the stale ones in $WHL)" >&2; exit 1; }
echo "[prepare] wheels + sdist in $WHL ($(( $(date +%s) - t0 )) s):" >&2
ls -l "$WHL"/*.tar.gz "$WHL"/required "$WHL"/fallback >&2

# -- 2. data-bin from real kowiki text -----------------------------------------------------------------------------
t0=$(date +%s)
if [ ! -f "$DATA/data-bin/_COMPLETE" ]; then
    [ -s "$WORK/kowiki-AA.sent.txt" ] || nice "$PY" bench/prep_kowiki_text.py "$SRC" "$WORK/kowiki-AA.sent.txt"
    # whole documents (a blank line ends one) into train until TRAIN_MB, then 150 documents each for valid and test:
    # the corpus stage also splits by document, and masked_lm's `complete` blocks never need a cut document
    mkdir -p "$WORK/split"
    "$PY" - "$WORK/kowiki-AA.sent.txt" "$WORK/split" "$TRAIN_MB" <<'EOF'
import sys
from pathlib import Path
src, out, train_mb = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
files = {s: open(out / f"{s}.txt", "w", encoding="utf-8") for s in ("train", "valid", "test")}
split, nbytes, docs = "train", 0, {"train": 0, "valid": 0, "test": 0}
with open(src, encoding="utf-8") as f:
    for line in f:
        if split is None:
            break
        files[split].write(line)
        nbytes += len(line.encode()) if split == "train" else 0
        if line == "\n":
            docs[split] += 1
            if split == "train" and nbytes >= train_mb * 1e6:
                split = "valid"
            elif split != "train" and docs[split] >= 150:
                split = "test" if split == "valid" else None
for f in files.values():
    f.close()
print(f"[prepare] split: {docs} documents, train {nbytes / 1e6:.1f} MB", file=sys.stderr)
EOF
    # a >= 40-update throughput run of the recipe batch (131k tokens/update) then stays inside one epoch
    nice "$PY" -m koroberta spm train "$WORK/split/train.txt" "$WORK/vocab" \
        --vocab-size 32000 --input-sentence-size "$SPM_SAMPLE" --threads "$THREADS"
    rm -rf "$DATA/data-bin"
    nice "$PY" -m koroberta preprocess run "$WORK/split" "$WORK/vocab" "$DATA/data-bin" --workers "$THREADS" \
        --no-progress
    # the parity check reads at most 1,000 lines (ids) and 16 sentences (logits)
    awk 'NF && n++ < 1000' "$WORK/split/valid.txt" > "$DATA/parity.txt"  # (head would SIGPIPE grep: pipefail)
    echo "[prepare] data-bin built in $(( $(date +%s) - t0 )) s" >&2
fi
ls -l "$DATA" "$DATA/data-bin" >&2

# -- 3. what travels: tracked + untracked-not-ignored files, plus the two carried folders -------------------------
tree_b=$(git ls-files -z -co --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
whl_b=$(du -sb "$WHL" | cut -f1)
data_b=$(du -sb "$DATA" | cut -f1)
total_b=$((tree_b + whl_b + data_b))
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
echo "[prepare] travels: tree $(mib "$tree_b") MiB + $WHL $(mib "$whl_b") MiB + $DATA $(mib "$data_b") MiB" \
     "= $(mib "$total_b") MiB (device limit 64 MiB; this script's limit $LIMIT_MIB MiB)" >&2
[ "$total_b" -le $((LIMIT_MIB * 1048576)) ] || { echo "error: over $LIMIT_MIB MiB: lower TRAIN_MB" >&2; exit 1; }
