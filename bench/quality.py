"""Quality benchmark: does a model pretrained by this pipeline beat the same model without pretraining?

    .venv/bin/python bench/quality.py --out bench/out/quality [--test-tsv ratings_test.txt]

1. **Pretrain** (``configs/small.yaml``): whole documents from the real kowiki shard
   ``../shared/data/kowiki-text/kowiki-extracted-AA.txt.xz`` up to ``--chars`` characters, then
   ``koroberta run --until convert`` (corpus -> spm -> preprocess -> train -> convert, about an hour on 2 cores).
   A second invocation reuses every complete stage (the pipeline's completion markers), so an interrupted benchmark
   resumes where it stopped and the NSMC half can be rerun alone.
2. **The control**: the *same* architecture and tokenizer, randomly initialised (HF's init, seeded), saved next to
   the export. Pretrained minus control isolates what pretraining gave.
3. **NSMC** (``../shared/data/nsmc/ratings_train.rebuilt.txt``): one seeded shuffle gives a dev split and a fixed
   number of training rows, written once as TSV files so every model sees the same rows. Both encoders are
   fine-tuned with ``koroberta eval nsmc`` (same settings, ``--seeds`` seeds); a TF-IDF + logistic-regression
   baseline (scikit-learn) gives context. ``--test-tsv`` also scores every model on that file.
4. **Masked-token accuracy** of the export on the valid split against the unigram baseline (the pipeline's learning
   check, from ``summary.json``).

Writes ``OUT/report.json`` (per model: ``dev_accuracy`` and, with ``--test-tsv``, ``test_accuracy`` -- one value per
seed) and ``OUT/report.md``. The target (issue 14): pretrained beats random-init by >= 3 accuracy points on the dev
mean, with the gap larger than 3x the pooled std.
"""

from __future__ import annotations

import argparse
import json
import lzma
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from koroberta.artifacts import read_json, sha256_file, write_json  # noqa: E402

SHARD = ROOT.parent / "shared/data/kowiki-text/kowiki-extracted-AA.txt.xz"
NSMC = ROOT.parent / "shared/data/nsmc/ratings_train.rebuilt.txt"
MODELS = ("pretrained", "random_init", "tfidf")
TARGET_POINTS = 3.0


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} | quality | {msg}", flush=True)


# -- 1. pretraining ---------------------------------------------------------------------------------------------


def write_text_subset(src: Path, dst: Path, max_chars: int) -> dict[str, int]:
    """The first whole WikiExtractor documents of ``src`` holding >= ``max_chars`` characters, verbatim (the corpus
    stage reads WikiExtractor format). Deterministic, so a rerun writes the same bytes and the corpus stage, which
    keys on input contents, skips."""
    docs = chars = 0
    tmp = dst.with_name(dst.name + ".tmp")
    dst.parent.mkdir(parents=True, exist_ok=True)
    opener = lzma.open if src.suffix == ".xz" else open
    with opener(src, "rt", encoding="utf-8") as f, open(tmp, "w", encoding="utf-8") as w:
        doc: list[str] = []
        for line in f:
            doc.append(line)
            if line.startswith("</doc>"):
                w.writelines(doc)
                docs += 1
                chars += sum(map(len, doc))
                doc = []
                if chars >= max_chars:
                    break
    if chars < max_chars:
        log(f"warning: {src} holds only {chars:,} characters (asked for {max_chars:,})")
    os.replace(tmp, dst)
    return {"documents": docs, "characters": chars}


def keep_seconds(out: Path, new: dict[str, float]) -> dict[str, float]:
    """Merge ``new`` step timings into ``OUT/stage_seconds.json`` and return them all. A step that was built by an
    earlier invocation is only checked by a later one (seconds instead of an hour): per step, the longest time
    recorded is the one of the invocation that did the work."""
    path = out / "stage_seconds.json"
    seconds: dict[str, float] = read_json(path) if path.exists() else {}
    for k, v in new.items():
        seconds[k] = max(v, seconds.get(k, 0.0))
    write_json(path, seconds)
    return seconds


def pretrain(config: Path, source: Path, workdir: Path, log_file: Path) -> dict[str, Any]:
    """``koroberta run CONFIG --until convert`` as a user runs it; returns its summary.json, with ``built_seconds``:
    each stage's time from the invocation that built it (:func:`keep_seconds`)."""
    def stage_seconds() -> dict[str, float]:
        summary = workdir / "summary.json"
        return keep_seconds(workdir.parent, read_json(summary).get("seconds", {}) if summary.exists() else {})

    stage_seconds()  # a summary left by an earlier `koroberta run` (e.g. --until preprocess) counts too
    cmd = [str(ROOT / ".venv/bin/koroberta"), "run", str(config), "--source", str(source),
           "--workdir", str(workdir), "--until", "convert"]
    log(" ".join(cmd) + f"  (output: {log_file})")
    with open(log_file, "a", encoding="utf-8") as lf:
        rc = subprocess.run(cmd, stdout=lf, stderr=subprocess.STDOUT, cwd=ROOT).returncode
    if rc != 0:
        tail = log_file.read_text(encoding="utf-8").strip().splitlines()[-1:]
        sys.exit(f"quality: the pipeline failed (exit {rc}): {' '.join(tail)} (full output: {log_file})")
    summary = read_json(workdir / "summary.json")
    built = stage_seconds()
    summary["built_seconds"] = {k: built[k] for k in summary.get("seconds", {})}
    return summary


# -- 2. the randomly initialised control ------------------------------------------------------------------------


def random_init_export(export: Path, dst: Path, seed: int) -> None:
    """``export``'s config and tokenizer files with fresh weights (``RobertaForMaskedLM(config)``, HF's init: normal
    with ``initializer_range``, as fairseq's ``init_bert_params``) drawn under ``seed``."""
    import torch

    from koroberta.hfcompat import import_transformers

    tf = import_transformers()
    config = tf.AutoConfig.from_pretrained(str(export))
    if (dst / "config.json").exists() and read_json(dst / "random_init.json") == {"seed": seed,
                                                                                  "config": config.to_dict()}:
        return
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    torch.manual_seed(seed)
    model = tf.RobertaForMaskedLM(config)
    model.save_pretrained(str(tmp))
    for f in export.iterdir():  # the tokenizer files, byte for byte (not the manifest: this is not the export)
        if f.name.startswith(("tokenizer", "special_tokens")) or f.suffix == ".model":
            shutil.copy2(f, tmp / f.name)
    write_json(tmp / "random_init.json", {"seed": seed, "config": config.to_dict()})
    shutil.rmtree(dst, ignore_errors=True)
    os.replace(tmp, dst)


# -- 3. NSMC ----------------------------------------------------------------------------------------------------


def read_nsmc(path: Path) -> list[tuple[str, str, str]]:
    """``(id, document, label)`` rows of an NSMC TSV (the eval harness's strict reader); rows with a blank document
    are left out (the rebuilt train set has 6)."""
    from koroberta.eval.readers import read_table

    _, rows = read_table(path, ["id", "document", "label"], layout="NSMC TSV",
                         column_fix="pass an NSMC TSV (header id<TAB>document<TAB>label)")
    return [(i, d, y) for i, d, y in rows if d.strip()]


def write_nsmc(path: Path, rows: list[tuple[str, str, str]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write("id\tdocument\tlabel\n")
        f.writelines(f"{i}\t{d}\t{y}\n" for i, d, y in rows)
    os.replace(tmp, path)


def nsmc_splits(rows: list[tuple[str, str, str]], src: Path, out: Path, train_rows: int, dev_rows: int,
                seed: int) -> dict[str, Any]:
    """One seeded shuffle of ``rows`` (read from ``src``): the first ``dev_rows`` are dev, the next ``train_rows``
    train."""
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    out.mkdir(parents=True, exist_ok=True)
    write_nsmc(out / "dev.tsv", rows[:dev_rows])
    write_nsmc(out / "train.tsv", rows[dev_rows:dev_rows + train_rows])
    return {"source": str(src), "source_sha256": sha256_file(src), "rows": len(rows), "seed": seed,
            "train_rows": train_rows, "dev_rows": dev_rows,
            "dev_positive_share": round(sum(r[2] == "1" for r in rows[:dev_rows]) / dev_rows, 4)}


def finetune_encoder(model_dir: Path, files: dict[str, Path | None], out: Path, args: argparse.Namespace
                     ) -> dict[str, Any]:
    """``koroberta eval nsmc`` with the benchmark's settings (the library call behind the CLI)."""
    from koroberta.eval.config import EvalConfig
    from koroberta.eval.benchmark import run_eval

    cfg = EvalConfig(task="nsmc", epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                     max_length=args.max_length, seeds=args.seeds, seed=args.seed, device="cpu",
                     threads=args.threads)
    run_eval(cfg, model_dir, files["train"], out, dev=files["dev"], test=files["test"])
    return read_json(out / "metrics.json")


def tfidf_baseline(files: dict[str, Path | None], seeds: list[int]) -> dict[str, Any]:
    """Character 1-4-gram TF-IDF + logistic regression. lbfgs is deterministic: the seeds give the same model,
    and are run anyway so every row of the report has the same shape."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score

    data = {k: read_nsmc(p) for k, p in files.items() if p is not None}
    runs = []
    for seed in seeds:
        vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), min_df=2, sublinear_tf=True)
        x = vec.fit_transform([d for _, d, _ in data["train"]])
        clf = LogisticRegression(max_iter=2000, random_state=seed).fit(x, [y for _, _, y in data["train"]])
        run: dict[str, Any] = {"seed": seed, "features": len(vec.vocabulary_)}
        for split in ("dev", "test"):
            if split in data:
                pred = clf.predict(vec.transform([d for _, d, _ in data[split]]))
                run[split] = {"accuracy": round(float(accuracy_score([y for _, _, y in data[split]], pred)), 4)}
        runs.append(run)
    return {"runs": runs, "settings": {"analyzer": "char_wb", "ngram_range": [1, 4], "min_df": 2,
                                       "sublinear_tf": True, "classifier": "LogisticRegression(C=1, lbfgs)"}}


# -- 4. report --------------------------------------------------------------------------------------------------


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample std (ddof=1), as ``koroberta eval`` reports them."""
    from koroberta.eval.metrics import summarize

    s = summarize(values)
    return s["mean"], s["std"]


def verdict(pre: list[float], rnd: list[float]) -> dict[str, Any]:
    (mp, sp), (mr, sr) = mean_std(pre), mean_std(rnd)
    gap = 100 * (mp - mr)
    pooled = 100 * math.sqrt((sp ** 2 + sr ** 2) / 2)
    return {"gap_points": round(gap, 2), "pooled_std_points": round(pooled, 2),
            "target": f"gap >= {TARGET_POINTS:g} points and gap > 3 x pooled std",
            "met": bool(gap >= TARGET_POINTS and gap > 3 * pooled)}


def render_md(rep: dict[str, Any]) -> str:
    def row(name: str, key: str) -> str:
        vals = rep["models"][name].get(key)
        if not vals:
            return "n/a"
        m, s = mean_std(vals)
        return f"{100 * m:.2f} ± {100 * s:.2f}"

    splits = ["dev_accuracy"] + (["test_accuracy"] if rep["test_tsv"] else [])
    lines = [f"# Quality benchmark — {rep['date']}", "",
             f"Command: `{rep['command']}`  ", f"Machine: {rep['machine']}", "",
             "## NSMC accuracy (%), mean ± std over seeds " + ", ".join(map(str, rep["seeds"])), "",
             "| model | " + " | ".join(s.replace("_accuracy", "") for s in splits) + " | per seed (dev) |",
             "|---|" + "---|" * len(splits) + "---|"]
    for name in MODELS:
        per_seed = ", ".join(f"{100 * v:.2f}" for v in rep["models"][name]["dev_accuracy"])
        lines.append(f"| {name} | " + " | ".join(row(name, s) for s in splits) + f" | {per_seed} |")
    v = rep["verdict"]
    lines += ["", f"pretrained − random_init (dev): **{v['gap_points']:+.2f} points**, pooled std "
                  f"{v['pooled_std_points']:.2f}; target {v['target']}: **{'met' if v['met'] else 'NOT met'}**."]
    if rep["test_tsv"]:
        t = rep["verdict_test"]
        lines.append(f"On {rep['test_tsv']}: {t['gap_points']:+.2f} points (pooled std {t['pooled_std_points']:.2f}).")
    lc = rep["pretraining"]["learning_check"]
    lines += ["", "## Pretraining", "",
              f"- data: {rep['pretraining']['text']['characters']:,} characters in "
              f"{rep['pretraining']['text']['documents']:,} WikiExtractor documents of {rep['pretraining']['shard']}",
              f"- train: {json.dumps(rep['pretraining']['train'])}",
              f"- masked-token accuracy on valid: {lc['accuracy']:.3f} vs {lc['unigram_accuracy']:.3f} (unigram); "
              f"loss {lc['loss_bits']:.2f} vs {lc['unigram_loss_bits']:.2f} bits over {lc['masked']:,} masked tokens",
              *(f"- fill-mask: {fm['sentence']} → " + ", ".join(f"{p['token']!r} {p['score']:.2f}"
                                                            for p in fm["predictions"])
                for fm in rep["pretraining"].get("fill_mask") or []),
              f"- stage seconds (the invocation that built each stage): {json.dumps(rep['pretraining']['seconds'])}",
              "", "## Fine-tuning", "", f"- data: {json.dumps(rep['nsmc'])}",
              f"- encoders: {json.dumps(rep['finetune_settings'])}",
              f"- TF-IDF: {json.dumps(rep['models']['tfidf']['settings'])}",
              f"- seconds, this invocation: {json.dumps(rep['seconds'])}",
              f"- seconds, the invocation that did each step: {json.dumps(rep['built_seconds'])}", ""]
    return "\n".join(lines)


def main() -> None:
    from koroberta.errors import KorobertaError

    try:
        run(parse_args())
    except KorobertaError as e:  # bad input: one line naming the file and the fix
        sys.exit(f"quality: {e}")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory (exports, NSMC splits, report.md/json)")
    ap.add_argument("--config", default=str(ROOT / "configs/small.yaml"), help="pretraining config")
    ap.add_argument("--shard", default=str(SHARD), help="WikiExtractor text (.txt or .txt.xz) to pretrain on")
    ap.add_argument("--chars", type=int, default=20_000_000, help="characters of whole documents taken from --shard")
    ap.add_argument("--nsmc", default=str(NSMC), help="NSMC-format TSV to take the train and dev rows from")
    ap.add_argument("--train-rows", type=int, default=20_000, help="fine-tuning rows")
    ap.add_argument("--dev-rows", type=int, default=5_000, help="dev rows (held out of --nsmc)")
    ap.add_argument("--test-tsv", help="also score every model on this NSMC-format file")
    ap.add_argument("--seeds", type=int, default=3, help="fine-tuning seeds per model")
    ap.add_argument("--seed", type=int, default=42, help="first seed (the data split and the random init use it too)")
    ap.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs (both encoders)")
    ap.add_argument("--lr", type=float, default=3e-4, help="fine-tuning peak lr (both encoders)")
    ap.add_argument("--batch-size", type=int, default=32, help="fine-tuning batch size")
    ap.add_argument("--max-length", type=int, default=128, help="fine-tuning max tokens")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads for fine-tuning")
    return ap.parse_args()


def run(args: argparse.Namespace) -> None:
    from koroberta.cli import setup_logging

    setup_logging()  # the eval harness's progress lines (koroberta.* loggers) on the terminal
    out = Path(args.out).resolve()
    for p, what in ((Path(args.shard), "--shard"), (Path(args.nsmc), "--nsmc"), (Path(args.config), "--config")):
        if not p.is_file():
            sys.exit(f"quality: {p}: not found; pass {what} FILE")
    if args.test_tsv and not Path(args.test_tsv).is_file():
        sys.exit(f"quality: {args.test_tsv}: not found; pass --test-tsv an NSMC-format file")
    # the NSMC files are read now, not after an hour of pretraining
    nsmc_rows = read_nsmc(Path(args.nsmc))
    if len(nsmc_rows) < args.train_rows + args.dev_rows:
        sys.exit(f"quality: {args.nsmc}: {len(nsmc_rows):,} rows, fewer than --train-rows + --dev-rows; lower them")
    if args.test_tsv:
        read_nsmc(Path(args.test_tsv))
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()

    size = f"{args.chars // 1_000_000}M" if args.chars % 1_000_000 == 0 else str(args.chars)
    text = out / f"kowiki-{size}.txt"  # configs/small.yaml names kowiki-20M.txt
    text_stats = write_text_subset(Path(args.shard), text, args.chars)
    log(f"pretraining text: {text} ({text_stats['documents']:,} documents, {text_stats['characters']:,} chars)")
    t = time.perf_counter()
    summary = pretrain(Path(args.config), text, out / "pipeline", out / "pipeline.log")
    seconds["pipeline"] = round(time.perf_counter() - t, 1)
    export = out / "pipeline" / "hf"
    log(f"pretrained export: {export}; {summary['learning_check']}")
    random_init_export(export, out / "random-init", args.seed)

    split = nsmc_splits(nsmc_rows, Path(args.nsmc), out / "nsmc", args.train_rows, args.dev_rows, args.seed)
    files: dict[str, Path | None] = {"train": out / "nsmc/train.tsv", "dev": out / "nsmc/dev.tsv",
                                     "test": Path(args.test_tsv).resolve() if args.test_tsv else None}
    models: dict[str, dict[str, Any]] = {}
    for name, mdir in (("pretrained", export), ("random_init", out / "random-init")):
        t = time.perf_counter()
        log(f"fine-tuning {name} ({args.seeds} seeds)")
        m = finetune_encoder(mdir, files, out / f"nsmc-{name}", args)
        seconds[f"finetune_{name}"] = round(time.perf_counter() - t, 1)
        models[name] = {"dev_accuracy": [r["dev"]["accuracy"] for r in m["runs"]],
                        "dev_f1": [r["dev"]["f1"] for r in m["runs"]], "metrics": str(out / f"nsmc-{name}")}
        if files["test"]:
            models[name]["test_accuracy"] = [r["test"]["accuracy"] for r in m["runs"]]
        log(f"{name}: dev accuracy {models[name]['dev_accuracy']}")
    t = time.perf_counter()
    tf = tfidf_baseline(files, [args.seed + i for i in range(args.seeds)])
    seconds["tfidf"] = round(time.perf_counter() - t, 1)
    models["tfidf"] = {"dev_accuracy": [r["dev"]["accuracy"] for r in tf["runs"]], "settings": tf["settings"],
                       "features": tf["runs"][0]["features"]}
    if files["test"]:
        models["tfidf"]["test_accuracy"] = [r["test"]["accuracy"] for r in tf["runs"]]
    log(f"tfidf: dev accuracy {models['tfidf']['dev_accuracy']}")
    seconds["total"] = round(time.perf_counter() - t0, 1)
    # TF-IDF is refit by every invocation: only the encoder steps and the pipeline can have been done earlier
    built = {**keep_seconds(out, {k: v for k, v in seconds.items() if k not in ("total", "tfidf")}),
             "tfidf": seconds["tfidf"]}

    import torch

    train_stats = summary["stages"].get("train", {})
    rep: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"), "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
        "seeds": [args.seed + i for i in range(args.seeds)], "test_tsv": args.test_tsv,
        "pretraining": {"config": args.config, "shard": args.shard, "text": text_stats,
                        "train": train_stats, "learning_check": summary["learning_check"],
                        "fill_mask": summary.get("fill_mask"), "seconds": summary["built_seconds"]},
        "nsmc": split,
        "finetune_settings": {"epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size,
                              "max_length": args.max_length, "device": "cpu", "threads": args.threads},
        "models": models,
        "verdict": verdict(models["pretrained"]["dev_accuracy"], models["random_init"]["dev_accuracy"]),
        "seconds": seconds,  # this invocation
        "built_seconds": {k: built[k] for k in seconds if k in built},  # the invocation that did each step
    }
    if files["test"]:
        rep["verdict_test"] = verdict(models["pretrained"]["test_accuracy"], models["random_init"]["test_accuracy"])
    write_json(out / "report.json", rep)
    (out / "report.md").write_text(render_md(rep), encoding="utf-8")
    log(f"report: {out / 'report.md'}\n\n" + render_md(rep))


if __name__ == "__main__":
    main()
