"""What the full kowiki dump costs, stage by stage: time, peak memory and disk, measured on the real 105 MB kowiki
shard and a quarter of it, extrapolated to the full dump on 16 cores (issue 24; a benchmark, not a test).

    .venv/bin/python bench/sizing.py --kowiki ../shared/data/kowiki-text/kowiki-extracted-AA.txt.xz \\
        --work bench/out/sizing --out bench/results

Inputs (read, never copied into the repository): the kowiki WikiExtractor shard, decompressed once into
``WORK/data/kowiki-full.txt`` and cut after its first quarter of documents into ``kowiki-quarter.txt``
(``bench/corpus_stage.py``'s preparation, reused).

Runs, each stage its own ``koroberta`` command in a child process (one at a time; the tree sampled by
``bench/corpus_stage.py``'s :class:`Sampler`: peak PSS summed over the process tree, CPU ticks of every process),
with the disk its output directory holds sampled too (``st_blocks``, every second):

* ``corpus build`` of a ``sources:`` config holding kowiki alone (the wiki profile's filters, exact and near dedup,
  kss ``punct``, the split, the report and the Parquet splits; intermediates removed at the end, the default):
  full and quarter with 1 worker, and with 2 workers (``--corpus-workers``);
* ``spm train`` on the corpus's ``train.txt`` with the default sample (``input_sentence_size`` 2,000,000, so every
  sentence of the shard), 32k unigram, 1 and 2 threads;
* ``preprocess run`` (fused encode + binarize), 1 and 2 workers;
* ``train --dry-run`` (preflight: every check that reads the data-bin);
* ``train`` for 20 updates of a 2-layer, 128-wide model on the CPU (the demo's model: what grows with the data is
  the loader -- fairseq's dataset index and the token blocks -- not the model).

The model of the full dump on 16 cores, one for every stage: CPU-seconds per character measured with 1 worker on the
full shard (``t1 = cpu_1 / chars``: one worker, so it is the time of a serial run, and CPU time is what the shared
box's other load disturbs least); the serial fraction ``s`` from 1 vs 2 workers on one input (Amdahl:
``wall_2 = wall_1 (s + (1 - s) / 2)``, so ``s = 2 wall_2 / wall_1 - 1``: wall times, so those two runs need an
otherwise idle box); ``wall_16 = t1 * C (s + (1 - s) / 16)`` for ``C`` characters of the full dump. Memory and disk: linear in characters
through the quarter and full points (a stage whose memory does not grow keeps its measured peak), plus, for the
corpus, 14 more kss workers at the largest measured worker's size. ``C``, the full dump's article text, is a flag
(``--full-chars``; 400M by default: the issue's estimate). Every number the report shows is from this run's JSON;
the box is shared, so the other load during each run is recorded (``other_cpu_s``) and wall-clock ratios under load
are flagged.

Results: ``WORK/results.json`` (every run; ``--only`` reruns some and keeps the rest) and ``OUT/sizing.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus_stage as cs  # noqa: E402  (the sampler and the data preparation)

ROOT = Path(__file__).resolve().parents[1]
KOROBERTA = [sys.executable, "-m", "koroberta"]
SIZES = ("quarter", "full")
GB = 1e9


def du(path: Path) -> int:
    """Bytes the files under ``path`` occupy on disk (allocated blocks: what a full disk counts)."""
    total = 0
    for root, dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:  # renamed or removed while walking: the stage moves its temporary directories
                pass
    return total


class DiskSampler(threading.Thread):
    def __init__(self, path: Path, interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.path, self.interval = path, interval
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, du(self.path) if self.path.exists() else 0)
            self.stop.wait(self.interval)


def measure(name: str, argv: list[str], disk_dir: Path, log: Path, interval: float = 0.5) -> dict:
    """Run ``koroberta ARGV`` as a child; its wall and CPU time (the whole tree), peak PSS of the tree, largest
    process RSS, disk under ``disk_dir`` at its peak and at the end, and the machine's other load meanwhile."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0, own0 = cs._busy_ticks(), time.process_time()
    disk0 = du(disk_dir) if disk_dir.exists() else 0
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        # cwd outside the repository: `-m koroberta` would import ./koroberta before a PYTHONPATH snapshot
        proc = subprocess.Popen([*KOROBERTA, *argv], stdout=fh, stderr=subprocess.STDOUT, cwd=log.parent)
        sampler = cs.Sampler(proc.pid, disk_dir, interval)
        disk = DiskSampler(disk_dir)
        sampler.start()
        disk.start()
        rc = proc.wait()
    wall = time.perf_counter() - t0
    for s in (sampler, disk):
        s.stop.set()
        s.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if rc != 0:
        raise SystemExit(f"{name}: exit {rc}; see {log}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    busy = (cs._busy_ticks() - busy0) / cs.TICK
    samples = sampler.samples
    end = du(disk_dir)
    return {"name": name, "argv": ["koroberta", *argv], "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "other_cpu_s": round(busy - cpu - (time.process_time() - own0), 1),
            "peak_tree_pss_mb": round(max((s["tree_pss"] for s in samples), default=0) / 1024, 1),
            "peak_main_rss_mb": round(max((s["main_rss"] for s in samples), default=0) / 1024, 1),
            "peak_worker_rss_mb": round(max((s["worker_rss_max"] for s in samples), default=0) / 1024, 1),
            "largest_child_maxrss_mb": round(after.ru_maxrss / 1024, 1),
            "disk_peak_gb": round(max(disk.peak, end) / GB, 4), "disk_end_gb": round(end / GB, 4),
            "disk_before_gb": round(disk0 / GB, 4), "samples": len(samples)}


def run_config(kowiki: Path, work: Path, corpus: dict | None = None) -> Path:
    import yaml

    cfg = {"workdir": str(work / "unused"), "sources": [{"name": "kowiki", "path": str(kowiki)}],
           "corpus": corpus or {},
           "train": {"encoder_layers": 2, "encoder_embed_dim": 128, "encoder_ffn_embed_dim": 512,
                     "encoder_attention_heads": 2, "tokens_per_sample": 512, "max_positions": 512, "batch_size": 8,
                     "update_freq": 1, "max_update": 20, "warmup_updates": 5, "log_interval": 5,
                     "save_interval_updates": 20, "validate_interval_updates": 20, "keep_interval_updates": 1,
                     "device": "cpu", "cpu_threads": 1, "num_workers": 0}}
    p = work / "run.yaml"
    p.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return p


def run_size(size: str, data: Path, work: Path, corpus_workers: list[int], stages: set[str],
             spm_vocab: int = 32000, corpus: dict | None = None) -> list[dict]:
    d = work / size
    d.mkdir(parents=True, exist_ok=True)
    rows = []
    main = None
    for w in corpus_workers:  # the 1-worker run is the one the later stages read
        out = d / f"corpus-w{w}"
        if "corpus" in stages:
            shutil.rmtree(out, ignore_errors=True)
            cfg = run_config(data / f"kowiki-{size}.txt", d, corpus)
            r = measure(f"corpus {size} w{w}", ["corpus", "build", "--config", str(cfg), str(out), "--workers",
                                                str(w)], out, d / f"corpus-w{w}.log")
            m = json.loads((out / "split" / "manifest.json").read_text())["stats"]
            r["step_s"] = {p.name: json.loads((p / "timing.json").read_text())["total_s"]
                           for p in sorted(out.iterdir()) if (p / "timing.json").is_file()}
            r.update({"stage": "corpus", "size": size, "workers": w,
                      "characters": sum(m["characters"].values()), "documents": sum(m["documents"].values()),
                      "sentences": sum(m["sentences"].values()),
                      "input_bytes": (data / f"kowiki-{size}.txt").stat().st_size})
            rows.append(r)
        main = main or out
    split = main / "split"
    chars = sum(json.loads((split / "manifest.json").read_text())["stats"]["characters"].values())
    spm = d / "spm-t1"
    for t in (1, 2):
        if "spm" in stages:
            o = d / f"spm-t{t}"
            shutil.rmtree(o, ignore_errors=True)
            r = measure(f"spm {size} t{t}", ["spm", "train", str(split / "train.txt"), str(o), "--threads", str(t),
                                                "--vocab-size", str(spm_vocab)],
                        o, d / f"spm-t{t}.log")
            r.update({"stage": "spm", "size": size, "workers": t, "characters": chars,
                      "sentences_read": json.loads((o / "manifest.json").read_text())["stats"]["sentences_read"]})
            rows.append(r)
    databin = d / "data-bin-w1"
    for w in (1, 2):
        if "preprocess" in stages:
            o = d / f"data-bin-w{w}"
            shutil.rmtree(o, ignore_errors=True)
            r = measure(f"preprocess {size} w{w}", ["preprocess", "run", str(split), str(spm), str(o), "--workers",
                                                    str(w), "--no-progress"], o, d / f"preprocess-w{w}.log")
            st = json.loads((o / "manifest.json").read_text())["stats"]
            r.update({"stage": "preprocess", "size": size, "workers": w, "characters": chars,
                      "tokens": st.get("train", {}).get("tokens") if isinstance(st.get("train"), dict) else None})
            rows.append(r)
    if "train" in stages:
        cfg = d / "run.yaml"
        save = d / "checkpoints"
        shutil.rmtree(save, ignore_errors=True)
        r = measure(f"preflight {size}", ["train", "run", str(cfg), str(databin), str(save), "--dry-run"], save,
                    d / "preflight.log")
        r.update({"stage": "preflight", "size": size, "workers": 1, "characters": chars})
        rows.append(r)
        shutil.rmtree(save, ignore_errors=True)
        r = measure(f"train20 {size}", ["train", "run", str(cfg), str(databin), str(save)], save, d / "train.log")
        r.update({"stage": "train (20 updates)", "size": size, "workers": 1, "characters": chars})
        rows.append(r)
    return rows


# -- the model --------------------------------------------------------------------------------------------------------
def extrapolate(rows: list[dict], full_chars: float, cores: int = 16) -> list[dict]:
    """One line per stage: the model of the module docstring, from the full (and quarter) rows."""
    out = []
    for stage in dict.fromkeys(r["stage"] for r in rows):
        by = {(r["size"], r["workers"]): r for r in rows if r["stage"] == stage}
        f1, f2, q1 = by.get(("full", 1)), by.get(("full", 2)), by.get(("quarter", 1))
        if f1 is None:
            continue
        t1 = f1["cpu_s"] / f1["characters"]  # CPU, not wall: robust to the shared box's other load
        if stage == "spm" and q1 is not None and "sentences_read" in f1:
            out.append(_spm_model(f1, q1, by.get(("full", 2)), full_chars, cores))
            continue
        two = f2 or by.get(("quarter", 2))
        one = f1 if f2 else q1
        s = s_amdahl = None
        if two and one:
            s = s_amdahl = min(1.0, max(0.0, 2 * two["wall_s"] / one["wall_s"] - 1))
        s_struct = None
        if stage == "corpus" and one and one.get("step_s"):
            # the steps no worker shares (extract's reader in-process, the merge + dedup, the split) over the whole
            # 1-worker run: a lower bound on what stays serial, independent of the 2-worker run's noise
            serial_steps = sum(v for k, v in one["step_s"].items() if not k.startswith("sentences"))
            s_struct = serial_steps / one["wall_s"]
            s = max(s or 0.0, s_struct)  # the larger, to err towards more time
        serial_1 = t1 * full_chars
        wall16 = serial_1 * (s + (1 - s) / cores) if s is not None else None

        def linear(key: str) -> float:
            if q1 is None or f1["characters"] == q1["characters"]:
                return f1[key] * full_chars / f1["characters"]
            slope = (f1[key] - q1[key]) / (f1["characters"] - q1["characters"])
            return max(f1[key], f1[key] + slope * (full_chars - f1["characters"]))

        mem_mb = linear("peak_tree_pss_mb")
        docs_full = None
        if stage == "corpus":
            # the kss step: 16 workers where the run had one or two, each the largest measured worker; the merge:
            # the dedup indexes for the full dump's documents (at the shard's documents per character), at their
            # measured cost per document (koroberta/corpus/dedup.py); the merge frees them before kss forks
            from koroberta.corpus.dedup import EXACT_BYTES_PER_DOC, NEAR_BYTES_PER_DOC

            docs_full = f1["documents"] * full_chars / f1["characters"]
            index_mb = docs_full * (EXACT_BYTES_PER_DOC + NEAR_BYTES_PER_DOC) / 1.048576e6
            workers_mb = (cores - 1) * max(r["peak_worker_rss_mb"] for r in by.values())
            mem_mb = max(mem_mb + index_mb, mem_mb + workers_mb)
        if stage.startswith("train"):  # 20 updates take what 20 updates take: only the loader's memory grows
            serial_1 = wall16 = None
        out.append({"stage": stage, "cpu_s_per_mchar": round(t1 * 1e6, 2), "serial_fraction": s,
                    "serial_amdahl": s_amdahl, "serial_steps": s_struct, "documents_full": docs_full,
                    "serial_from": f"{two['size']} 1 vs 2" if two and one else None,
                    "wall_1_full_dump_min": round(serial_1 / 60, 1) if serial_1 is not None else None,
                    f"wall_{cores}_full_dump_min": round(wall16 / 60, 1) if wall16 is not None else None,
                    "peak_memory_gb": round(mem_mb * 1.048576e6 / GB, 2),
                    "disk_peak_gb": round(linear("disk_peak_gb"), 2), "disk_end_gb": round(linear("disk_end_gb"), 2)})
    return out


def _spm_model(f1: dict, q1: dict, f2: dict | None, full_chars: float, cores: int,
               sample: int = 2_000_000) -> dict:
    """spm's cost follows the sentences it trains on, not the characters: every sentence up to
    ``input_sentence_size`` (2M by default), then a sample of that many. Time and memory are linear in the sampled
    sentences through the quarter and full points; the full dump's sample is its sentences (at the shard's
    sentences per character) capped at 2M."""
    x_q, x_f = min(sample, q1["sentences_read"]), min(sample, f1["sentences_read"])
    x_full = min(sample, f1["sentences_read"] * full_chars / f1["characters"])

    def at(key: str) -> float:
        slope = (f1[key] - q1[key]) / (x_f - x_q)
        return f1[key] + slope * (x_full - x_f)

    cpu = at("cpu_s")
    s = min(1.0, max(0.0, 2 * f2["wall_s"] / f1["wall_s"] - 1)) if f2 else None
    return {"stage": "spm", "cpu_s_per_mchar": round(f1["cpu_s"] / f1["characters"] * 1e6, 2), "serial_fraction": s,
            "serial_amdahl": s, "serial_steps": None, "documents_full": None,
            "serial_from": "full 1 vs 2 threads" if f2 else None,
            "note": f"linear in sampled sentences: {x_q:,} and {x_f:,} measured, {int(x_full):,} for the full dump",
            "wall_1_full_dump_min": round(cpu / 60, 1),
            f"wall_{cores}_full_dump_min": round(cpu * (s + (1 - s) / cores) / 60, 1) if s is not None else None,
            "peak_memory_gb": round(at("peak_tree_pss_mb") * 1.048576e6 / GB, 2),
            "disk_peak_gb": round(f1["disk_peak_gb"], 3), "disk_end_gb": round(f1["disk_end_gb"], 3)}


def render(res: dict) -> str:
    rows, model = res["rows"], res["model"]
    cores = res["cores"]
    md = ["# Sizing: what the full kowiki dump costs, per stage (issue 24)", "",
          f"Rendered by `bench/sizing.py` ({res['when']}, {res['machine']}); each run's package: the reading below.",
          "",
          "```", res["command"], "```", "",
          f"Data: the real kowiki WikiExtractor shard (`kowiki-extracted-AA.txt.xz`, {res['data']['full_bytes'] / 1e6:.1f} "
          f"MB decompressed) and its first quarter of documents. Full dump: {res['full_chars'] / 1e6:.0f}M characters "
          "of article text (assumed, `--full-chars`).", "",
          "## Measured", "",
          "| run | wall s | CPU s | other load CPU s | peak tree PSS MB | largest worker RSS MB | disk peak GB | "
          "disk end GB | characters |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        md.append(f"| {r['name']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['other_cpu_s']:.1f} | "
                  f"{r['peak_tree_pss_mb']:.0f} | {r['peak_worker_rss_mb']:.0f} | {r['disk_peak_gb']:.3f} | "
                  f"{r['disk_end_gb']:.3f} | {r['characters']:,} |")
    md += ["", f"## Extrapolated to the full dump on {cores} cores", "",
           "`wall_16 = (cpu_1 / chars) * C * (s + (1 - s) / 16)`, `s = 2 wall_2 / wall_1 - 1`; memory and disk "
           "linear in characters through the two sizes.", "",
           f"| stage | CPU s per M chars (1 worker, full shard) | serial fraction s (from) | 1 core, full dump, min | "
           f"{cores} cores, full dump, min | peak memory GB | disk peak GB | disk end GB |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for m in model:
        s = "—" if m["serial_fraction"] is None else f"{m['serial_fraction']:.3f} ({m['serial_from']}"
        if m["serial_fraction"] is not None:
            parts = []
            if m.get("serial_amdahl") is not None:
                parts.append(f"Amdahl {m['serial_amdahl']:.3f}")
            if m.get("serial_steps") is not None:
                parts.append(f"serial steps {m['serial_steps']:.3f}")
            s += (": " + ", ".join(parts) if parts else "") + ")"
        w16 = m.get(f"wall_{cores}_full_dump_min")
        w1 = m["wall_1_full_dump_min"]
        md.append(f"| {m['stage']} | {m['cpu_s_per_mchar']:.1f} | {s} | {'—' if w1 is None else f'{w1:.1f}'} | "
                  f"{'—' if w16 is None else f'{w16:.1f}'} | {m['peak_memory_gb']:.2f} | {m['disk_peak_gb']:.2f} | "
                  f"{m['disk_end_gb']:.2f} |")
    md += [""] + [f"* {m['stage']}: {m['note']}." for m in model if m.get("note")]
    corpus = next((m for m in model if m["stage"] == "corpus"), None)
    if corpus and corpus.get(f"wall_{cores}_full_dump_min") is not None:
        w = corpus[f"wall_{cores}_full_dump_min"]
        md += ["", f"Corpus stage, full dump, {cores} cores: **{w:.1f} min — "
               + ("≤ 30 min: met by extrapolation" if w <= 30 else "not met") + "**."]
    over = [m["stage"] for m in model if m["peak_memory_gb"] >= 16]
    md += ["", "Every stage's extrapolated peak memory under 16 GB: " + ("**yes**" if not over else
                                                                        f"**no** ({', '.join(over)})") + "."]
    return "\n".join(md) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kowiki", type=Path, required=True, help="kowiki-extracted-AA.txt.xz")
    ap.add_argument("--work", type=Path, default=ROOT / "bench/out/sizing")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results")
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), choices=SIZES)
    ap.add_argument("--only", nargs="+", default=["corpus", "spm", "preprocess", "train"],
                    choices=["corpus", "spm", "preprocess", "train"], help="stages to (re)measure; others kept")
    ap.add_argument("--corpus-workers", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--full-chars", type=float, default=400e6)
    ap.add_argument("--cores", type=int, default=16)
    ap.add_argument("--spm-vocab", type=int, default=32000, help="a smaller one for a smoke run on a few MB")
    ap.add_argument("--valid-fraction", type=float, help="corpus.valid_fraction and test_fraction (smoke runs)")
    ap.add_argument("--render-only", action="store_true")
    args = ap.parse_args()
    work = args.work.resolve()
    data = work / "data"
    results = work / "results.json"
    old = json.loads(results.read_text()) if results.exists() else {"rows": []}
    rows = old["rows"]
    if not args.render_only:
        # the quarter/full files of bench/corpus_stage.py's preparation (reviews unused here: kowiki alone)
        meta = cs.prepare(args.kowiki.resolve(), _empty_reviews(work), data, 0)
        del meta
        for size in args.sizes:
            new = run_size(size, data, work, args.corpus_workers, set(args.only), args.spm_vocab,
                           {"valid_fraction": args.valid_fraction, "test_fraction": args.valid_fraction}
                           if args.valid_fraction else None)
            names = {r["name"] for r in new}
            rows = [r for r in rows if r["name"] not in names] + new
            _save(results, rows, args)
    for r in rows:  # spm runs recorded before the sentence count was kept
        m = work / r["size"] / f"spm-t{r['workers']}" / "manifest.json"
        if r["stage"] == "spm" and "sentences_read" not in r and m.is_file():
            r["sentences_read"] = json.loads(m.read_text())["stats"]["sentences_read"]
    for r in rows:  # runs recorded before step timings were kept: read them from the run's directories
        d = work / r["size"] / f"corpus-w{r['workers']}"
        if r["stage"] == "corpus" and "step_s" not in r and d.is_dir():
            r["step_s"] = {p.name: json.loads((p / "timing.json").read_text())["total_s"]
                           for p in sorted(d.iterdir()) if (p / "timing.json").is_file()}
    res = _save(results, rows, args)
    args.out.mkdir(parents=True, exist_ok=True)
    md, old_md = render(res), args.out / "sizing.md"
    if old_md.exists() and cs.KEEP_MARK in old_md.read_text(encoding="utf-8"):  # the reading, written by hand
        md += "\n" + cs.KEEP_MARK + old_md.read_text(encoding="utf-8").split(cs.KEEP_MARK, 1)[1]
    old_md.write_text(md, encoding="utf-8")
    print(args.out / "sizing.md")


def _empty_reviews(work: Path) -> Path:
    """corpus_stage.prepare also cuts a reviews file; sizing reads kowiki alone, so it gets a one-row stand-in."""
    p = work / "data" / "no-reviews.tsv"
    p.parent.mkdir(parents=True, exist_ok=True)
    if not p.exists():
        p.write_text("id\tdocument\tlabel\n1\t없음\t0\n", encoding="utf-8")
    return p


def _save(path: Path, rows: list[dict], args: argparse.Namespace) -> dict:
    order = {n: i for i, n in enumerate(("corpus", "spm", "preprocess", "preflight", "train (20 updates)"))}
    rows = sorted(rows, key=lambda r: (order.get(r["stage"], 9), SIZES.index(r["size"]), r["workers"]))
    data = args.work.resolve() / "data"
    res = {"rows": rows, "model": extrapolate(rows, args.full_chars, args.cores), "cores": args.cores,
           "full_chars": args.full_chars, "when": time.strftime("%Y-%m-%d %H:%M"),
           "machine": f"{os.cpu_count()} vCPUs, {cs._mem_gb():.0f} GB", "package": cs.package_info(),
           "command": " ".join(["python bench/sizing.py", *sys.argv[1:]]),
           "data": {"full_bytes": (data / "kowiki-full.txt").stat().st_size if (data / "kowiki-full.txt").exists()
                    else 0}}
    path.write_text(json.dumps(res, indent=1, ensure_ascii=False))
    return res


if __name__ == "__main__":
    main()
