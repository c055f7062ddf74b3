#!/usr/bin/env bash
# Issue 15, step 2 of 2 — the ONE script for the lent GPU machine (offline: Python 3.12, torch 2.11 + CUDA 13, no
# fairseq). Prepare first, here: `bash bench/gpu_prepare.sh`. Then one device call, from the repo root:
#
#   run(command="bash bench/gpu_run.sh", carry=[".gpu-wheels", ".gpu-data"], timeout_s=420)
#
# Stages (STAGES, in this order), each logged and recorded in $OUT as soon as it ends:
#   install      the carried wheels -> $SITE/deps with `pip --no-index --target` (fallback/ only for modules the
#                image lacks)
#   build        fairseq-fixed sdist -> $SITE/fairseq with `pip install --no-build-isolation --no-deps`, timed;
#                CUDA_HOME unset: fairseq's setup.py then skips its nvcc extensions (NAT/generation only)
#   correctness  `koroberta train` (our command builder, CUDA, 1 GPU, fp16) of roberta_base on the carried kowiki
#                data-bin: loss must fall, the fp16 loss scale must not collapse; then `koroberta convert` of
#                checkpoint_last.pt on the CPU with the HF-vs-fairseq parity check
#   throughput   bench/train_throughput.py: stock (16 x update_freq 16, 1 worker, complete) first, then the knobs,
#                most informative first, until the deadline less PROFILE_S
#   profile      bench/profile_train.py on the fastest configuration measured: GPU busy share, kernel time by
#                class, the rate the GEMMs reach (what limits MFU)
# A rerun skips the build when the machine is still warm ($SITE imports fairseq) or when the call carries the
# fairseq-built-cp312.tar.xz an earlier call returned, copied into .gpu-wheels/.
#
# Everything lands in $OUT (at most 8 files come back): run.log, results.jsonl (one JSON object per stage / config,
# appended as it happens), summary.md (rewritten after every stage; the profile at its end), throughput.md,
# correctness.log, fairseq.log (every throughput run's full output), fairseq-built-cp312.tar.xz (see build).
#
# Knobs: BUDGET_S (whole script, default 360 s, so that one rerun fits the 15-minute lease), STAGES, CONFIGS,
# UPDATES (per throughput config, default 30), CORRECT_UPDATES (default 100), PROFILE_S (time kept for the profile,
# default 50 s).
# CPU rehearsal (no GPU; tiny model, fp32; builds fairseq from the same sdist with the .venv's Python 3.11 and
# installs the cp312 wheels into a check target):
#   GPU_DRY_RUN=1 bash bench/gpu_run.sh
set -uo pipefail  # no -e: a failed stage is recorded and the stages after it still run where they can
cd "$(dirname "$0")/.."
REPO=$PWD
T0=$(date +%s)
DRY=${GPU_DRY_RUN:-0}
WHL=${WHL:-$REPO/.gpu-wheels}
DATA=${DATA:-$REPO/.gpu-data}
STAGES=${STAGES:-install build correctness throughput profile}
if [ "$DRY" = 1 ]; then
    PY=${PY:-$REPO/.venv/bin/python}
    BASE=${BASE:-$REPO/bench/out/gpu-dry}
    OUT=${OUT:-$BASE/out}
    SITE=${SITE:-$BASE/site}
    BUDGET_S=${BUDGET_S:-2400}
    BUILD_CAP_S=${BUILD_CAP_S:-1500}    # the fairseq build alone is 4-9 min on the shared 2-core dev box
    UPDATES=${UPDATES:-6}
    CORRECT_UPDATES=${CORRECT_UPDATES:-30}
    CONFIGS=${CONFIGS:-stock bs32+break_none+pad64 amp}
    MAX_JOBS=${MAX_JOBS:-1}             # the dev box is shared
    PROFILE_S=${PROFILE_S:-60}
else
    PY=${PY:-python3}
    BASE=${BASE:-/tmp/koroberta-gpu}
    OUT=${OUT:-$REPO/bench/out/gpu-run}
    SITE=${SITE:-$REPO/.gpu-site}       # in the repo: an ignored folder survives a warm rerun
    BUDGET_S=${BUDGET_S:-360}
    BUILD_CAP_S=${BUILD_CAP_S:-300}
    UPDATES=${UPDATES:-30}
    CORRECT_UPDATES=${CORRECT_UPDATES:-100}
    # stock, then the most likely winner (so stock and best share this run even if the deadline cuts the rest),
    # then one knob at a time so each gain can be attributed, then the bigger batches
    CONFIGS=${CONFIGS:-stock bs64+break_none+workers2+pad64 break_none bs64 amp pad64 workers2 workers0 \
bs128+break_none+workers2+pad64 bs256+break_none+workers2+pad64 bs32}
    MAX_JOBS=${MAX_JOBS:-16}
    PROFILE_S=${PROFILE_S:-50}
fi
DEADLINE=$((T0 + BUDGET_S))
WORK=$BASE/work
mkdir -p "$OUT" "$WORK" "$SITE"
rm -f "$WORK/profile.md"                # a warm machine's from the last call would land in this summary
exec > >(tee -a "$OUT/run.log") 2>&1
export PYTHONPATH="$SITE/fairseq:$SITE/deps:$REPO${PYTHONPATH:+:$PYTHONPATH}"
# `koroberta train` (launcher local) runs fairseq-train from PATH; torch's BuildExtension looks for ninja on PATH
# (the pip package puts it beside the interpreter) and silently falls back to one-file-at-a-time distutils without it
PYBIN=$(dirname "$("$PY" -c 'import sys; print(sys.executable)')")
export PATH="$SITE/fairseq/bin:$PATH:$PYBIN"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_NO_ADVISORY_WARNINGS=1
export MAX_JOBS                         # ninja's parallelism in torch's BuildExtension

left() { echo $((DEADLINE - $(date +%s))); }
capped() { local l; l=$(left); l=$(( l < $1 ? l : $1 )); echo $(( l > 1 ? l : 1 )); }  # min(left, $1), >= 1 s
# (timeout 0 would mean no limit at all)
say() { echo "[gpu_run +$(( $(date +%s) - T0 ))s] $*"; }
record() { echo "$1" >> "$OUT/results.jsonl"; }   # one JSON object per line
want() { case " $STAGES " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
want profile || PROFILE_S=0

summary() {  # summary.md from results.jsonl (+ the profile): rewritten after every stage, so a cut run leaves one
    "$PY" - "$OUT/results.jsonl" "$OUT/summary.md" "$DRY" "$WORK/profile.md" <<'EOF'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()] if os.path.exists(sys.argv[1]) else []
dry = sys.argv[3] == "1"
out = ["# issue 15 GPU run" + (" — CPU REHEARSAL (GPU_DRY_RUN=1): not GPU figures" if dry else ""), ""]
for r in rows:
    if "stage" in r:
        out.append(f"- **{r['stage']}**: " + ", ".join(f"{k} {v}" for k, v in r.items() if k != "stage"))
tp = [r for r in rows if "name" in r]
if tp:
    out += ["", "| config | batch x uf | break | workers | vocab rows | prec | tokens/s | vs stock | MFU | "
                "peak CUDA MiB | overflows | loss scale | note |", "|" + "---|" * 13]
    anchor = tp[0].get("tokens_per_s") if tp[0]["name"] == "stock" else None
    for r in tp:
        t = r.get("tokens_per_s")
        mem = r.get("peak_cuda_mib") or r.get("peak_rss_mib")
        out.append(f"| {r['name']} | {r.get('batch', '')} | {r.get('break_mode', '')} | {r.get('workers', '')} | "
                   f"{r.get('vocab_rows', '')} | {r.get('precision', '')} | {'' if t is None else f'{t:,.0f}'} | "
                   f"{f'{t / anchor:.2f}x' if t and anchor else ''} | "
                   f"{'' if r.get('mfu') is None else format(r['mfu'], '.1%')} | "
                   f"{'' if mem is None else f'{mem:,.0f}'} | {r.get('overflows', '')} | {r.get('loss_scale', '')} | "
                   f"{r.get('skipped') or r.get('error') or r.get('partial') or ''} |")
    ok = [r for r in tp if r.get("tokens_per_s") and not r.get("partial")]
    if anchor and ok:
        best = max(ok, key=lambda r: r["tokens_per_s"])
        tokens = 125_000 * 2048 * 512  # the base recipe: 125k updates of 2,048 x 512 tokens
        days = tokens / (8 * best["tokens_per_s"]) / 86400
        out += ["", f"best: `{best['name']}` {best['tokens_per_s']:,.0f} tokens/s = "
                    f"{best['tokens_per_s'] / anchor:.2f}x stock ({anchor:,.0f}); base recipe (1.31e11 tokens) on 8 such "
                    f"GPUs at that rate, scaling assumed perfect: {days:.1f} days"]
if os.path.exists(sys.argv[4]):
    out += ["", open(sys.argv[4], encoding="utf-8").read()]
open(sys.argv[2], "w", encoding="utf-8").write("\n".join(out) + "\n")
EOF
}

say "start: dry=$DRY stages='$STAGES' budget ${BUDGET_S}s out=$OUT site=$SITE"
# -- environment --------------------------------------------------------------------------------------------------
"$PY" - <<'EOF' | tee -a "$OUT/results.jsonl"
import json, os, platform, torch
cuda = torch.cuda.is_available()
p = torch.cuda.get_device_properties(0) if cuda else None
print(json.dumps({"stage": "env", "python": platform.python_version(), "torch": torch.__version__,
                  "cuda": torch.version.cuda, "gpu": torch.cuda.get_device_name(0) if cuda else None,
                  "gpu_mem_gib": round(p.total_memory / 2**30, 1) if p else None,
                  "sms": p.multi_processor_count if p else None, "cpus": os.cpu_count()}))
EOF
if [ "$DRY" != 1 ]; then
    # the ceiling MFU is read against: an 8192^3 fp16 matmul on random data (METHOD.md: measure it, datasheet 989)
    "$PY" - <<'EOF' | tee -a "$OUT/results.jsonl"
import json, torch
a, b = (torch.randn(8192, 8192, device="cuda", dtype=torch.float16) for _ in range(2))
for _ in range(3):
    a @ b
s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
s.record()
for _ in range(10):
    a @ b
e.record()
torch.cuda.synchronize()
print(json.dumps({"stage": "matmul-ceiling", "fp16_tflops": round(10 * 2 * 8192**3 / (s.elapsed_time(e) / 1e3) / 1e12, 1)}))
EOF
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm \
    --format=csv
lack=0
if want install || want build; then [ -f "$WHL/fairseq_fixed-0.12.3.1.tar.gz" ] || lack=1; fi
if want correctness || want throughput || want profile; then [ -f "$DATA/data-bin/train.bin" ] || lack=1; fi
if [ $lack = 1 ]; then
    say "error: $WHL or $DATA missing: run bench/gpu_prepare.sh here and name both folders in the call's carry"
    record '{"stage": "prepared-files", "ok": false}'; summary; exit 2
fi

# -- install: the carried wheels ----------------------------------------------------------------------------------
pip_target() {  # pip install from carried files only, into the target $1
    local target=$1; shift
    "$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target "$target" "$@"
}
if want install; then
    t=$(date +%s)
    if [ "$DRY" = 1 ]; then
        # the .venv has every package (for Python 3.11); prove that the cp312 set installs as a set for the
        # image's Python 3.12, and that the compiled one loads under a local 3.12 where there is one
        chk=$BASE/check312; rm -rf "$chk"
        "$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps --no-compile --target "$chk" \
            --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_26_x86_64 --platform manylinux2014_x86_64 \
            "$WHL"/required/*.whl "$WHL"/fallback/*.whl
        rc=$?
        py312=""
        for c in /root/.pyenv/versions/3.12*/bin/python3.12 "$(command -v python3.12)"; do  # (a pyenv shim may fail)
            [ -n "$c" ] && "$c" -c pass 2>/dev/null && { py312=$c; break; }
        done
        if [ $rc = 0 ] && [ -n "$py312" ]; then
            # hydra/omegaconf need PyYAML, which the image has and a bare local 3.12 may not
            PYTHONPATH="$chk" "$py312" -c "
import importlib.util, sys
mods = ['antlr4', 'bitarray', 'regex', 'lxml.etree', 'tabulate', 'portalocker', 'colorama']
mods += ['hydra', 'omegaconf'] if importlib.util.find_spec('yaml') else []
for m in mods:
    importlib.import_module(m)
print('cp312 wheels import under Python', sys.version.split()[0] + ':', ', '.join(mods))"
            rc=$?
        fi
        missing="(dry run: the .venv provides all)"
    else
        pip_target "$SITE/deps" "$WHL"/required/*.whl
        rc=$?
        missing=""
        for pair in sacrebleu:sacrebleu portalocker:portalocker regex:regex tabulate:tabulate colorama:colorama \
                    lxml:lxml; do
            mod=${pair%%:*}; dist=${pair##*:}
            "$PY" -c "import $mod" 2>/dev/null || missing="$missing $dist"
        done
        if [ -n "$missing" ]; then
            say "image lacks:$missing -> installing those from fallback/"
            files=(); for d in $missing; do files+=("$WHL"/fallback/"$d"-*.whl); done
            pip_target "$SITE/deps" "${files[@]}" || rc=$?
        fi
    fi
    say "install rc=$rc in $(( $(date +%s) - t)) s"
    record "{\"stage\": \"install\", \"ok\": $([ $rc = 0 ] && echo true || echo false), \"seconds\": $(( $(date +%s) - t)), \"fallback_installed\": \"${missing# }\"}"
    summary
fi

# -- build fairseq from the sdist against the machine's torch -----------------------------------------------------
# After a build, what masked_lm training needs of it (python sources, console scripts, the Cython and libbleu
# extensions; not the examples or the three ~11 MB torch extensions for BASE layers, NAT and alignment, which it never
# imports) is packed into $OUT/$BUILT (~3 MB). Copied into .gpu-wheels/ and carried by the next call, it replaces the
# ~2-3 minute build there, provided Python and torch are the same (checked against the stamp inside it).
BUILT=fairseq-built-cp$("$PY" -c 'import sys; print("%d%d" % sys.version_info[:2])').tar.xz
fairseq_ok() { "$PY" -c "import fairseq, fairseq.data.data_utils_fast, fairseq.data.token_block_utils_fast, hydra" \
               2>/dev/null && [ -x "$SITE/fairseq/bin/fairseq-train" ]; }
abi() { "$PY" -c 'import sys, torch; print(sys.version.split()[0], torch.__version__)'; }
if want build; then
    t=$(date +%s)
    if fairseq_ok && [ -f "$SITE/fairseq/.built-from-sdist" ]; then
        say "build: $SITE/fairseq already imports (warm machine): skipped"
        record '{"stage": "build", "ok": true, "seconds": 0, "note": "reused the warm machine'"'"'s build"}'
    elif [ -f "$WHL/$BUILT" ] && rm -rf "$SITE/fairseq" && mkdir -p "$SITE/fairseq" \
         && tar -xJf "$WHL/$BUILT" -C "$SITE/fairseq" && [ "$(cat "$SITE/fairseq/.built-from-sdist")" = "$(abi)" ] \
         && fairseq_ok; then
        say "build: unpacked $BUILT from an earlier device call (same Python/torch): skipped"
        record "{\"stage\": \"build\", \"ok\": true, \"seconds\": $(( $(date +%s) - t)), \"note\": \"unpacked $BUILT\"}"
    else
        ninja=$(ninja --version 2>/dev/null || echo none)
        say "build: fairseq-fixed 0.12.3.1 from the sdist, MAX_JOBS=$MAX_JOBS, ninja $ninja ..."
        rm -rf "$SITE/fairseq"
        timeout -k 10 "$(capped "$BUILD_CAP_S")" env -u CUDA_HOME nice -n "$([ "$DRY" = 1 ] && echo 10 || echo 0)" \
            "$PY" -m pip install -v --disable-pip-version-check --no-index --no-build-isolation --no-deps \
            --no-compile --no-cache-dir --target "$SITE/fairseq" "$WHL/fairseq_fixed-0.12.3.1.tar.gz" \
            > "$WORK/build.log" 2>&1
        rc=$?
        secs=$(( $(date +%s) - t))
        if [ $rc = 0 ] && fairseq_ok; then
            abi > "$SITE/fairseq/.built-from-sdist"
            record "{\"stage\": \"build\", \"ok\": true, \"seconds\": $secs, \"max_jobs\": $MAX_JOBS, \"ninja\": \"$ninja\"}"
        else
            tail -40 "$WORK/build.log"
            record "{\"stage\": \"build\", \"ok\": false, \"rc\": $rc, \"seconds\": $secs}"
        fi
        say "build rc=$rc in $secs s"
    fi
    if fairseq_ok && [ ! -f "$WHL/$BUILT" ]; then
        (cd "$SITE/fairseq" && tar -cJf "$OUT/$BUILT" --exclude=fairseq/examples --exclude='fairseq/libbase.*' \
            --exclude='fairseq/libnat.*' --exclude='alignment_train_*' .built-from-sdist bin fairseq fairseq_cli \
            fairseq_fixed-*.dist-info) && say "packed $BUILT: $(du -h "$OUT/$BUILT" | cut -f1)"
    fi
    summary
fi
fairseq_ok || { say "fairseq does not import from $SITE: nothing to train with"; summary; exit 1; }

# -- correctness: koroberta train (fp16, CUDA) -> loss falls, scale settles; convert on the CPU with parity ----------
if want correctness; then
    t=$(date +%s)
    save=$WORK/correct; hf=$WORK/hf
    rm -rf "$save" "$hf"
    if [ "$DRY" = 1 ]; then
        model=(--encoder-layers 2 --encoder-embed-dim 128 --encoder-ffn-embed-dim 512 --encoder-attention-heads 2
               --batch-size 4 --device cpu --precision fp32 --cpu-threads 1 --num-workers 0 --lr 0.001)
    else
        model=(--batch-size 16 --device cuda --precision fp16 --num-workers 2 --lr 0.0005)
    fi
    say "correctness: koroberta train roberta_base x $CORRECT_UPDATES updates ..."
    timeout -s INT -k 15 "$(capped 200)" "$PY" -m koroberta train --data-bin "$DATA/data-bin" --save-dir "$save" \
        --arch roberta_base "${model[@]}" --update-freq 1 --max-update "$CORRECT_UPDATES" \
        --warmup-updates $((CORRECT_UPDATES / 5)) --log-interval $((CORRECT_UPDATES / 10)) \
        --save-interval-updates 0 --validate-interval-updates 0 --keep-interval-updates 1 \
        > "$OUT/correctness.log" 2>&1
    rc=$?
    # koroberta train keeps fairseq's own output in SAVE_DIR/train.log: bring it back with the rest
    { echo "===== $save/train.log ====="; cat "$save/train.log"; } >> "$OUT/correctness.log" 2>&1
    # pass: loss finite and >= 1 bit lower at the end than in the first interval; overflow-skipped updates at most
    # 10 % (a few are normal while the scale finds its level); the scale at the end no lower than 1/16 of its start
    "$PY" - "$save" "$rc" "$(( $(date +%s) - t))" "$DRY" <<'EOF' | tee -a "$OUT/results.jsonl"
import json, math, sys
from pathlib import Path
from koroberta.train.logs import parse_log
save, rc, secs, dry = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
r = {"stage": "correctness-train", "rc": rc, "seconds": secs}
try:
    tl = parse_log(save)
    text = (save / "train.log").read_text(encoding="utf-8", errors="replace")
    _, loss = tl.series("inner", "loss")
    _, scale = tl.series("inner", "loss_scale")
    _, wps = tl.series("inner", "wps")
    r.update(updates=tl.updates, first_loss=loss[0] if loss else None, last_loss=loss[-1] if loss else None,
             valid_loss=tl.stats()["final_valid_loss"], loss_scale=scale, overflows=text.count("gradient overflow"),
             wps_last=wps[-1] if wps else None, checkpoint=(save / "checkpoint_last.pt").is_file())
    ok = rc == 0 and r["checkpoint"] and len(loss) >= 2 and all(map(math.isfinite, loss)) \
        and loss[-1] <= loss[0] - 1.0 and r["overflows"] <= max(2, 0.1 * tl.updates)
    if not dry:
        ok = ok and bool(scale) and scale[-1] >= scale[0] / 16
    r["ok"] = bool(ok)
except Exception as e:  # a missing/garbled log is a failed check, not a crash of the whole script
    r.update(ok=False, error=f"{type(e).__name__}: {e}"[:300])
print(json.dumps(r))
EOF
    tail -5 "$OUT/correctness.log"
    if [ -f "$save/checkpoint_last.pt" ]; then
        t=$(date +%s)
        say "convert on the CPU (parity: 1,000 lines' ids, 16 sentences' logits) ..."
        echo "===== koroberta convert =====" >> "$OUT/correctness.log"
        CUDA_VISIBLE_DEVICES="" timeout -k 10 "$(capped 150)" "$PY" -m koroberta convert "$save/checkpoint_last.pt" \
            "$DATA/data-bin" "$hf" --parity-text "$DATA/parity.txt" --model-name koroberta-gpu-check \
            >> "$OUT/correctness.log" 2>&1
        rc=$?
        parity=$(tail -1 "$OUT/correctness.log")
        case "$parity" in "{"*) ;; *) parity='null' ;; esac
        record "{\"stage\": \"convert\", \"ok\": $([ $rc = 0 ] && echo true || echo false), \"rc\": $rc, \"seconds\": $(( $(date +%s) - t)), \"parity\": $parity}"
        tail -3 "$OUT/correctness.log"
    fi
    rm -rf "$hf"
    summary
fi

# -- throughput ---------------------------------------------------------------------------------------------------
if want throughput; then
    # keep PROFILE_S for the profile only when the throughput window still holds stock + 3 more configurations;
    # short of that, comparisons come first and the profile gets whatever is left
    reserve=$PROFILE_S
    [ $(( $(left) - 10 - PROFILE_S )) -ge $(( 4 * 45 )) ] || reserve=0
    say "throughput: $CONFIGS (until $(( $(left) - 10 - reserve )) s from now) ..."
    if [ "$DRY" = 1 ]; then
        extra=(--tiny --update-freq 2 --log-interval 1 --cpu-threads 1 --min-config-s 20)
    else
        extra=(--update-freq 16 --log-interval 5 --min-config-s 40)
    fi
    # shellcheck disable=SC2086  # CONFIGS is a list of names
    "$PY" bench/train_throughput.py --data-bin "$DATA/data-bin" --updates "$UPDATES" "${extra[@]}" \
        --configs $CONFIGS --deadline $((DEADLINE - 10 - reserve)) --jsonl "$OUT/results.jsonl" --log-dir "$OUT" \
        --out "$OUT/throughput.md"
    say "throughput rc=$?"
    summary
fi

# -- profile the fastest configuration measured (stock if none) ---------------------------------------------------
if want profile; then
    best=$("$PY" - "$OUT/results.jsonl" <<'EOF'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()] if os.path.exists(sys.argv[1]) else []
ok = [r for r in rows if r.get("tokens_per_s") and not r.get("partial")]
print(max(ok, key=lambda r: r["tokens_per_s"])["name"] if ok else "stock")
EOF
)
    if [ "$(left)" -lt 40 ]; then
        say "profile: skipped, $(left) s left"
        record '{"stage": "profile", "ok": false, "skipped": "no time left"}'
    else
        say "profile: $best ($(left) s left) ..."
        if [ "$DRY" = 1 ]; then
            extra=(--tiny --update-freq 2 --skip 2 --steps 2 --cpu-threads 1)
        else
            extra=(--update-freq 16 --skip 3 --steps 3)
        fi
        timeout -s INT -k 10 "$(capped 120)" "$PY" bench/profile_train.py --data-bin "$DATA/data-bin" \
            --config "$best" "${extra[@]}" --out "$WORK/profile.md" --jsonl "$OUT/results.jsonl" \
            > "$WORK/profile.log" 2>&1
        rc=$?
        [ $rc = 0 ] || { tail -20 "$WORK/profile.log"; record "{\"stage\": \"profile\", \"ok\": false, \"rc\": $rc}"; }
        say "profile rc=$rc"
    fi
    summary
fi
summary
say "done in $(( $(date +%s) - T0 )) s; results in $OUT"
cat "$OUT/summary.md"
sleep 1  # let tee finish writing run.log before the device collects $OUT
