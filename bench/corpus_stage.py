"""Throughput and peak memory of the whole corpus stage on real text, two sources (issue 22; bench, not a test).

    .venv/bin/python bench/corpus_stage.py --kowiki ../shared/data/kowiki-text/kowiki-extracted-AA.txt.xz \\
        --reviews ../shared/data/nsmc/ratings_train.rebuilt.txt --workers 2 --out bench/results

Inputs (read, never copied into the repository): the kowiki WikiExtractor shard (real Korean Wikipedia articles) and
150,000 NSMC-format reviews. Prepared under ``--work`` (git-ignored ``bench/out/``):

* ``kowiki-full.txt``: the shard decompressed (the stage reads ``.xz`` itself, but then the full size would pay
  lzma and the quarter, which must be cut into a file anyway, would not: both sizes read plain files);
  ``kowiki-quarter.txt``: its first quarter of documents, cut after a ``</doc>`` line;
* ``reviews-quarter.tsv``: the header and the first quarter of the review rows (the full size reads the shared
  file itself);
* ``eval-last1000.tsv``: the header and the last 1,000 review rows: the decontamination file. At full size those
  rows are in the source and must be dropped; at quarter size they are not (only earlier copies of them are).

Each size runs ``koroberta corpus build --config RUN.yaml OUT --workers N`` (top-level ``sources:`` kowiki then
reviews, ``decontaminate:`` the eval file, every ``corpus`` field at its default) in a child process, one size at a
time (run together, their memory would be confounded). The child is this script in ``_child`` mode: it runs the CLI
in-process, so its own ``getrusage`` gives the main process's peak RSS (the dedup index lives there) and the
largest pool worker's (``RUSAGE_CHILDREN.ru_maxrss`` is the largest waited-for child, not a sum). The parent:

* CPU of the whole tree: its own ``RUSAGE_CHILDREN`` before and after the child (the child waits for its pool
  workers, so theirs is included);
* samples ``/proc`` every ``--interval`` s: the tree's processes (children via ``/proc/PID/task/*/children``), each
  one's RSS and PSS (``smaps_rollup``: forked workers share the parent's pages, so summed RSS counts them twice and
  summed PSS does not) and CPU ticks; the sub-step running is the ``.NAME.tmp-PID`` directory present in OUT;
* after the run (not timed): the step manifests and ``timing.json`` (each step's wall time), how many documents the
  exact and near dedup indexes held (recomputed from ``clean/``), and what decontamination dropped.

Parts after the timed runs, each its own invocation (one process at a time, so no measurement overlaps another):

* ``--retained``: the clean step alone in a fresh process on a run's extract directories: is the index's memory
  returned when the step ends (after return, after ``gc.collect()``, after ``malloc_trim``)?
* ``--gc-after-clean``: the whole run again with ``gc.collect()`` when the clean step returns (a patch inside the
  child only; the package is not changed): the memory the tree needs once the index is freed;
* ``--split-alone``: the split step alone, with the report and without it: what the split's memory grows with
  (the report's lengths are streamed since issue "Real size" item 7; ``bench/corpus_split_memory.py`` measures the
  split before and after that change);
* ``--tag NAME``: the timed run of another package snapshot (``PYTHONPATH``), e.g. one with a fix, stored apart.

Results: ``WORK/SIZE.json`` per size (``--sizes`` runs some, the report is rendered from every one present),
``WORK/SIZE-gc.json``, ``WORK/SIZE-TAG.json``, ``WORK/SIZE.retained.json``, ``WORK/SIZE.split.json`` and
``OUT/corpus_stage.md``; text below the line ``<!-- hand-written below -->`` of an existing report is kept. The
report's header names the package the rendering process imported: render with the snapshot of the main runs.

Run it from a snapshot of the package when others edit the tree (``PYTHONPATH=/tmp/snap``; the child inherits it);
the report records which ``koroberta`` was imported, and ``SNAPSHOT.txt`` next to that package if there is one.
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

KEEP_MARK = "<!-- hand-written below -->"
SIZES = ("quarter", "full")
TICK = os.sysconf("SC_CLK_TCK")
_TMP_DIR = re.compile(r"^\.(.+)\.tmp-\d+$")


# -- child: the stage itself ------------------------------------------------------------------------------------------
def child(rusage_path: str, argv: list[str], gc_after_clean: bool = False) -> int:
    """Run ``koroberta ARGV`` in this process and write this process's and its largest child's rusage.

    ``gc_after_clean``: the experiment behind the memory finding (bench only, the package is not changed): run
    ``gc.collect()`` when the clean step returns. datasketch's ``MinHashLSH`` keeps a bound method of itself
    (``self._H = self._byteswap``), a reference cycle, so the near index is freed only by the cyclic collector --
    and the main process forks the sentence workers right after the clean step."""
    from koroberta.cli import main

    if gc_after_clean:
        import functools
        import gc

        from koroberta.corpus import steps

        clean = steps.clean

        @functools.wraps(clean)
        def clean_then_collect(*a, **kw):
            try:
                return clean(*a, **kw)
            finally:
                gc.collect()

        steps.clean = clean_then_collect  # build.py looks steps.clean up at call time

    rc = 1
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse errors exit; keep their code, still write the rusage
        rc = e.code if isinstance(e.code, int) else 1
    finally:
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        Path(rusage_path).write_text(json.dumps({
            "rc": rc, "main_maxrss_kb": own.ru_maxrss, "largest_child_maxrss_kb": kids.ru_maxrss,
            "main_cpu_s": own.ru_utime + own.ru_stime, "children_cpu_s": kids.ru_utime + kids.ru_stime}))
    return rc or 0


def clean_child(run_yaml: str, corpus: str, result: str) -> int:
    """The clean step alone on a finished run's extract directories, in this fresh process: the main process's RSS
    after the imports, its peak, and after the step returned (the index is then garbage), after ``gc.collect()`` and
    after glibc's ``malloc_trim(0)`` -- whether the index's memory goes back to the system when the step ends, or
    stays in the process that later forks the sentence workers and runs the split."""
    import ctypes
    import gc

    from koroberta.corpus import dedup, steps  # noqa: F401  (imported before the first reading: not index memory)
    from koroberta.pipeline import PipelineConfig

    def rss_kb() -> int:
        return int(re.search(r"VmRSS:\s+(\d+)", _read("/proc/self/status")).group(1))

    cfg = PipelineConfig.load(run_yaml)
    dedup.NearDedup()  # its first construction imports datasketch and scipy: constant, not index memory
    gc.collect()
    r = {"after_imports_kb": rss_kb()}
    t0 = time.process_time()
    steps.clean(cfg.corpus, Path(corpus), decontaminate=[Path(p) for p in cfg.decontaminate])
    r["clean_cpu_s"] = round(time.process_time() - t0, 1)
    r["peak_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r["after_return_kb"] = rss_kb()
    gc.collect()
    r["after_gc_kb"] = rss_kb()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    r["after_malloc_trim_kb"] = rss_kb()
    Path(result).write_text(json.dumps(r))
    return 0


def retained(size: str, work: Path) -> dict:
    """:func:`clean_child` on a copy (hard links) of ``size``'s extract directories."""
    src = work / size / "corpus"
    dst = work / size / "retained"
    shutil.rmtree(dst, ignore_errors=True)
    (dst / "corpus").mkdir(parents=True)
    for name in ("extract-kowiki", "extract-reviews"):
        shutil.copytree(src / name, dst / "corpus" / name, copy_function=os.link)
    res = dst / "result.json"
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "_clean_child", str(work / size / "run.yaml"),
                    str(dst / "corpus"), str(res)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    r = json.loads(res.read_text())
    shutil.rmtree(dst)
    return r


# "report, numpy histogram" (a bench-only patch of report.histogram given a numpy array instead of a list of Python
# ints) was a third variant until the report streamed its lengths: it is what the report now does; older
# WORK/SIZE.split.json files still hold its rows, rendered as they are
SPLIT_VARIANTS = ("report", "no report")


def split_child(run_yaml: str, corpus: str, variant: str, result: str) -> int:
    """The split step alone, in this fresh process, on a finished run's ``clean/`` and ``sentences/``: RSS after the
    imports and peak (``ru_maxrss``). Variants: as shipped (``report``) and ``report: false``."""
    from koroberta.corpus import steps
    from koroberta.pipeline import PipelineConfig

    import matplotlib  # noqa: F401  (imported before the first reading, as the report's own import would be)
    import matplotlib.pyplot  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    cfg = PipelineConfig.load(run_yaml).corpus
    if variant == "no report":
        cfg.report = False
    rss = int(re.search(r"VmRSS:\s+(\d+)", _read("/proc/self/status")).group(1))
    t0 = time.process_time()
    steps.split(cfg, Path(corpus), force=True)
    Path(result).write_text(json.dumps({
        "variant": variant, "after_imports_kb": rss, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "cpu_s": round(time.process_time() - t0, 1)}))
    return 0


def split_alone(size: str, work: Path) -> list[dict]:
    """:func:`split_child` for each variant on a copy (hard links) of ``size``'s clean and sentence directories."""
    src = work / size / "corpus"
    out = []
    for variant in SPLIT_VARIANTS:
        dst = work / size / "split-alone"
        shutil.rmtree(dst, ignore_errors=True)
        (dst / "corpus").mkdir(parents=True)
        for d in src.iterdir():
            if d.is_dir() and (d.name == "clean" or d.name.startswith("sentences")):
                shutil.copytree(d, dst / "corpus" / d.name, copy_function=os.link)
        res = dst / "result.json"
        subprocess.run([sys.executable, str(Path(__file__).resolve()), "_split_child", str(work / size / "run.yaml"),
                        str(dst / "corpus"), variant, str(res)], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        out.append(json.loads(res.read_text()))
        shutil.rmtree(dst)
    return out


# -- data -------------------------------------------------------------------------------------------------------------
def prepare(kowiki_xz: Path, reviews: Path, data: Path, eval_rows: int) -> dict:
    """The input files of both sizes (made once; a rerun reuses them when the sources are unchanged) and their
    counts as the stage's own readers see them: documents and characters of document text."""
    from koroberta.corpus.sources import ReadStats, iter_nsmc, iter_wikiextractor

    data.mkdir(parents=True, exist_ok=True)
    meta_path = data / "prepared.json"
    key = {"kowiki": [str(kowiki_xz), kowiki_xz.stat().st_size, kowiki_xz.stat().st_mtime],
           "reviews": [str(reviews), reviews.stat().st_size, reviews.stat().st_mtime], "eval_rows": eval_rows}
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("key") == key and all(Path(p).exists() for p in meta["files"].values()):
            return meta
    t0 = time.time()
    full = data / "kowiki-full.txt"
    with lzma.open(kowiki_xz, "rb") as src, open(full, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    with open(full, "rb") as f:
        n_docs = sum(1 for line in f if line.startswith(b"</doc>"))
    quarter_docs = n_docs // 4
    quarter = data / "kowiki-quarter.txt"
    with open(full, "rb") as src, open(quarter, "wb") as dst:
        seen = 0
        for line in src:
            dst.write(line)
            if line.startswith(b"</doc>"):
                seen += 1
                if seen == quarter_docs:
                    break
    lines = reviews.read_bytes().split(b"\n")
    header, rows = lines[0], [l for l in lines[1:] if l.strip()]
    rq = data / "reviews-quarter.tsv"
    rq.write_bytes(b"\n".join([header] + rows[:len(rows) // 4]) + b"\n")
    ev = data / f"eval-last{eval_rows}.tsv"
    ev.write_bytes(b"\n".join([header] + rows[-eval_rows:]) + b"\n")
    files = {"kowiki.full": str(full), "kowiki.quarter": str(quarter), "reviews.full": str(reviews),
             "reviews.quarter": str(rq), "eval": str(ev)}
    counts = {}
    for name, path in files.items():
        if name == "eval":
            continue
        reader = iter_wikiextractor if name.startswith("kowiki") else iter_nsmc
        docs = chars = 0
        for page in reader([Path(path)], ReadStats()):
            docs += 1
            chars += len(page.text)
        counts[name] = {"documents": docs, "characters": chars, "bytes": Path(path).stat().st_size}
    meta = {"key": key, "files": files, "counts": counts, "kowiki_docs_in_shard": n_docs,
            "eval_ids": [r.split(b"\t", 1)[0].decode() for r in rows[-eval_rows:]],
            "prepare_s": round(time.time() - t0, 1)}
    meta_path.write_text(json.dumps(meta, indent=1))
    return meta


# -- /proc sampling ---------------------------------------------------------------------------------------------------
def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:  # the process exited between listing and reading
        return None


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for task in os.listdir(f"/proc/{p}/task") if os.path.isdir(f"/proc/{p}/task") else ():
            kids = _read(f"/proc/{p}/task/{task}/children")
            for k in (kids or "").split():
                out.append(int(k))
                todo.append(int(k))
    return out


def _proc(pid: int) -> dict | None:
    """RSS, PSS (kB) and own CPU ticks of one process."""
    stat, status, rollup = _read(f"/proc/{pid}/stat"), _read(f"/proc/{pid}/status"), _read(f"/proc/{pid}/smaps_rollup")
    if stat is None or status is None:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    ticks = int(fields[11]) + int(fields[12])  # utime stime: its own, never its waited-for children's
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) if "VmRSS" in status else 0
    m = re.search(r"^Pss:\s+(\d+)", rollup or "", re.M)
    return {"rss": rss, "pss": int(m.group(1)) if m else rss, "ticks": ticks}


def _busy_ticks() -> int:
    """CPU ticks the whole machine spent busy (user nice system irq softirq steal), from /proc/stat."""
    v = [int(x) for x in _read("/proc/stat").split("\n", 1)[0].split()[1:]]
    return v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)


class Sampler(threading.Thread):
    """Samples the process tree of ``pid`` every ``interval`` s until stopped; ``phase`` is the corpus sub-step whose
    temporary directory exists in ``out`` (``-`` between steps: imports, input checks and fingerprints)."""

    def __init__(self, pid: int, out: Path, interval: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.out, self.interval = pid, out, interval
        self.samples: list[dict] = []
        self.stop = threading.Event()
        # last own CPU ticks seen per worker, kept after it exits: a worker's ticks then move into the main
        # process's cutime only when it is waited for, so summing live processes (or using cutime) would drop
        # them for a while and count them twice after. Misses each worker's last < interval of CPU.
        self.worker_ticks: dict[int, int] = {}

    def phase(self) -> str:
        try:
            names = [m.group(1) for n in os.listdir(self.out) if (m := _TMP_DIR.match(n))]
        except OSError:
            return "-"
        return names[0] if names else "-"

    def run(self) -> None:
        t0 = time.monotonic()
        while not self.stop.is_set():
            main = _proc(self.pid)
            if main is None:
                break
            workers = []
            for pid in _descendants(self.pid):
                w = _proc(pid)
                if w is not None:
                    workers.append(w)
                    self.worker_ticks[pid] = w["ticks"]
            self.samples.append({
                "t": round(time.monotonic() - t0, 3), "phase": self.phase(), "main_rss": main["rss"],
                "main_pss": main["pss"], "workers": len(workers), "worker_rss_max": max((w["rss"] for w in workers),
                                                                                        default=0),
                "tree_pss": main["pss"] + sum(w["pss"] for w in workers),
                "tree_rss": main["rss"] + sum(w["rss"] for w in workers),
                "tree_ticks": main["ticks"] + sum(self.worker_ticks.values()), "busy_ticks": _busy_ticks()})
            self.stop.wait(self.interval)


def _label_gaps(samples: list[dict]) -> list[str]:
    """The phase of each sample, a gap between steps named for the step after it (``(before clean)``: that step's
    checks and input fingerprints, or the pool start) and the tail after the last step ``(after split)``."""
    labels = [s["phase"] for s in samples]
    nxt = None
    for i in range(len(labels) - 1, -1, -1):
        if labels[i] != "-":
            nxt = labels[i]
        else:
            labels[i] = f"(before {nxt})" if nxt else "(end)"
    last = next((l for l in reversed(labels) if not l.startswith("(")), None)
    return [f"(after {last})" if l == "(end)" and last else l for l in labels]


def phases(samples: list[dict]) -> list[dict]:
    """Per sub-step or gap (:func:`_label_gaps`), in order of first appearance: sampled wall span, CPU-s of the tree
    (tick deltas, each attributed to the phase of the later sample), the main process's RSS at its first sample and
    at its peak, the largest worker RSS and the peak summed PSS."""
    out: dict[str, dict] = {}
    prev = None
    for s, label in zip(samples, _label_gaps(samples)):
        s = {**s, "phase": label}
        p = out.setdefault(s["phase"], {"phase": s["phase"], "first_t": s["t"], "last_t": s["t"], "cpu_s": 0.0,
                                        "main_rss_start_kb": s["main_rss"], "main_rss_peak_kb": 0,
                                        "worker_rss_peak_kb": 0, "tree_pss_peak_kb": 0, "samples": 0})
        p["last_t"] = s["t"]
        p["samples"] += 1
        p["main_rss_peak_kb"] = max(p["main_rss_peak_kb"], s["main_rss"])
        p["worker_rss_peak_kb"] = max(p["worker_rss_peak_kb"], s["worker_rss_max"])
        p["tree_pss_peak_kb"] = max(p["tree_pss_peak_kb"], s["tree_pss"])
        if prev is not None:
            p["cpu_s"] += (s["tree_ticks"] - prev["tree_ticks"]) / TICK  # monotone: see Sampler.worker_ticks
        prev = s
    return list(out.values())


# -- one size ---------------------------------------------------------------------------------------------------------
def run_size(size: str, meta: dict, work: Path, workers: int, interval: float, gc_after_clean: bool = False,
             tag: str = "") -> dict:
    import yaml

    tag = tag or ("gc" if gc_after_clean else "")
    label = f"{size}-{tag}" if tag else size
    d = work / label
    shutil.rmtree(d, ignore_errors=True)  # a complete earlier run would be skipped, not measured
    d.mkdir(parents=True)
    out = d / "corpus"
    f = meta["files"]
    cfg = {"workdir": str(d / "workdir-unused"),
           # NSMC TSV is its own source kind (one row = one document); `documents: line` is for plain text and
           # is refused for it, so the reviews source has no `documents:` key
           "sources": [{"name": "kowiki", "path": f[f"kowiki.{size}"]},
                       {"name": "reviews", "path": f[f"reviews.{size}"]}],
           "decontaminate": [f["eval"]]}
    run_yaml = d / "run.yaml"
    run_yaml.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    argv = ["corpus", "build", "--config", str(run_yaml), str(out), "--workers", str(workers)]
    rusage_json = d / "child_rusage.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "_child", str(rusage_json),
           "gc" if gc_after_clean else "plain", *argv]
    load_before = _read("/proc/loadavg").split()[:3]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    own0 = time.process_time()
    busy0 = _busy_ticks()
    t0 = time.perf_counter()
    with open(d / "stage.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        sampler = Sampler(proc.pid, out, interval)
        sampler.start()
        rc = proc.wait()
    wall = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = (_busy_ticks() - busy0) / TICK
    own = time.process_time() - own0  # this process: the sampler's own cost, subtracted from "other load"
    if rc != 0:
        raise SystemExit(f"{size}: the stage failed (exit {rc}); see {d / 'stage.log'}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    res = {"size": size, "command": " ".join(["koroberta", *argv]), "run_yaml": run_yaml.read_text(),
           "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "user_s": round(after.ru_utime - before.ru_utime, 1),
           "sys_s": round(after.ru_stime - before.ru_stime, 1), "child": json.loads(rusage_json.read_text()),
           "load_before": load_before, "load_after": _read("/proc/loadavg").split()[:3],
           "machine_busy_cpu_s": round(busy, 1), "sampler_cpu_s": round(own, 1),
           "other_cpu_s": round(busy - cpu - own, 1), "phases": phases(sampler.samples),
           "sample_interval_s": interval, "n_samples": len(sampler.samples),
           "peak_tree_pss_kb": max((s["tree_pss"] for s in sampler.samples), default=0),
           "peak_tree_rss_kb": max((s["tree_rss"] for s in sampler.samples), default=0),
           "peak_main_rss_sampled_kb": max((s["main_rss"] for s in sampler.samples), default=0)}
    with open(d / "samples.jsonl", "w") as fh:
        fh.writelines(json.dumps(s) + "\n" for s in sampler.samples)
    res.update(analyse(out, meta, size))
    res["gc_after_clean"] = gc_after_clean
    res["package"] = package_info()
    (work / f"{label}.json").write_text(json.dumps(res, indent=1, ensure_ascii=False))
    return res


def analyse(out: Path, meta: dict, size: str) -> dict:
    """What the run made, from its own outputs (after the timed run): step stats and wall times, the dedup indexes'
    sizes, and the decontamination of the planted evaluation rows."""
    from koroberta.artifacts import read_manifest
    from koroberta.corpus.decontaminate import Decontaminator, load_items
    from koroberta.corpus.dedup import NearDedup, normalize

    steps = sorted(p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))
    stats = {s: read_manifest(out / s)["stats"] for s in steps}
    timing = {s: json.loads((out / s / "timing.json").read_text()) for s in steps if (out / s / "timing.json").exists()}
    clean = stats["clean"]
    # the exact index records every document that passed decontamination with a key not seen before, i.e. the kept
    # ones and the near duplicates (the exact check runs first); the near index every kept document whose normalised
    # text reaches NearDedup's min_chars (shorter ones are neither matched nor added)
    min_chars = NearDedup.__init__.__kwdefaults__["min_chars"]
    near_n = kept = 0
    with open(out / "clean" / "docs.jsonl", encoding="utf-8") as f:
        for line in f:
            kept += 1
            near_n += len(normalize(json.loads(line)["text"])) >= min_chars
    exact_n = kept + clean["dropped"].get("near_duplicate", 0)
    # decontamination: the eval rows are the last rows of the full reviews file
    eval_ids = {f"reviews/{i}" for i in meta["eval_ids"]}
    dec = Decontaminator(load_items([Path(meta["files"]["eval"])]))
    extracted = set()
    with open(out / "extract-reviews" / "docs.jsonl", encoding="utf-8") as f:
        for line in f:
            rid = json.loads(line)["id"]
            if rid in eval_ids:
                extracted.add(rid)
    dropped_decon = {}
    with open(out / "clean" / "excluded.jsonl", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r["reason"] == "decontaminated":
                dropped_decon[r["id"]] = r["source"]
    # the planted rows that reached the merge and were kept: their item was not indexed (under the decontaminator's
    # min_chars), or it was and the document no longer contains it (the reviews' filter profile edited the text:
    # repeats shortened, PII replaced) -- those are listed
    item_text = {}
    with open(meta["files"]["eval"], encoding="utf-8") as f:
        next(f)
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) >= 2:
                item_text[f"reviews/{cols[0]}"] = cols[1]
    missed_short, missed_other = 0, []
    with open(out / "clean" / "docs.jsonl", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r["id"] in eval_ids:
                if len(normalize(item_text.get(r["id"], ""))) < dec.min_chars:
                    missed_short += 1
                else:
                    missed_other.append({"id": r["id"], "eval_text": item_text.get(r["id"]), "doc_text": r["text"]})
    planted_dropped = sum(1 for i in dropped_decon if i in eval_ids)
    return {"steps": stats, "timing": timing,
            "index": {"exact_documents": exact_n, "near_documents": near_n, "clean_kept": kept,
                      "near_min_chars": min_chars},
            "decontamination": {"eval_rows": len(eval_ids), "items": dec.stats(),
                                "planted_in_extract": len(extracted), "planted_dropped": planted_dropped,
                                "other_dropped": {s: sum(1 for i, src in dropped_decon.items()
                                                         if src == s and i not in eval_ids)
                                                  for s in ("kowiki", "reviews")},
                                "planted_kept_short": missed_short, "planted_kept_other": len(missed_other),
                                "planted_kept_other_examples": missed_other[:20]}}


# -- report -----------------------------------------------------------------------------------------------------------
def mb(kb: float) -> str:
    return f"{kb / 1024:,.0f}"


def render(results: dict[str, dict], meta: dict, args: argparse.Namespace) -> str:
    from koroberta.corpus.dedup import ExactDedup, NearDedup
    import koroberta

    exact_b, near_b = ExactDedup.memory_per_document(), NearDedup.memory_per_document()
    snap = Path(koroberta.__file__).resolve().parents[1] / "SNAPSHOT.txt"
    c = meta["counts"]
    cmd = (f"{_env_prefix()}{_rel(Path(sys.executable))} {_rel(Path(__file__).resolve())} --kowiki {args.kowiki} "
           f"--reviews {args.reviews} --workers {args.workers} --eval-rows {args.eval_rows} --work {_rel(args.work)} "
           f"--out {args.out}")
    md = ["# Whole corpus stage, two sources: throughput and peak memory (issue 22)\n",
          "Generated by `bench/corpus_stage.py`; the text below the hand-written line is kept on a rerun.\n",
          "The runs, in this order (each renders this file from every result present):\n",
          "```", f"{cmd} --sizes {','.join(results)}      # the timed runs, one size after the other",
          f"{cmd} --report-only --retained      # the clean step alone: is the index freed?",
          f"{cmd} --sizes quarter --gc-after-clean      # then --sizes full --gc-after-clean",
          f"{cmd} --report-only --split-alone   # the split step alone, with and without the report", "```\n",
          f"Package measured: `{Path(koroberta.__file__).resolve().parent}`" + (
              " (a snapshot: the commit below plus the working-tree changes of issue 22 listed):\n\n```\n"
              + snap.read_text().strip() + "\n```\n" if snap.exists()
              else "\n"),
          f"Machine: {os.cpu_count()} vCPUs ({_cpu_model()}), {_mem_gb():.0f} GB, Python {platform.python_version()}, "
          f"{platform.system()} {platform.release()}; no GPU. Shared with other jobs: see the load columns.\n",
          "## Data\n",
          "Real text only, nothing synthesized. Documents and characters as the stage's readers see them "
          "(`iter_wikiextractor`, `iter_nsmc`: a document's text before cleaning).\n",
          "| size | kowiki file | kowiki documents | kowiki characters | review rows | review characters | "
          "documents in | characters in |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for size in results:
        k, r = c[f"kowiki.{size}"], c[f"reviews.{size}"]
        md.append(f"| {size} | {Path(meta['files'][f'kowiki.{size}']).name} ({k['bytes'] / 1e6:.1f} MB) | "
                  f"{k['documents']:,} | {k['characters']:,} | {r['documents']:,} | {r['characters']:,} | "
                  f"{k['documents'] + r['documents']:,} | {k['characters'] + r['characters']:,} |")
    md += ["",
           f"* kowiki: `{args.kowiki}` ({meta['kowiki_docs_in_shard']:,} WikiExtractor documents), decompressed to "
           "`kowiki-full.txt`; the quarter is its first quarter of documents, cut after a `</doc>` line.",
           f"* reviews: `{args.reviews}` read in place at full size; the quarter is the header and the first quarter "
           "of the rows.",
           f"* decontamination file: the header and the **last {args.eval_rows:,} rows** of the full reviews file. "
           "At full size they are in the source and must be dropped; at quarter size they are not, so only earlier "
           "copies of them (reviews repeat) can be.",
           "* run config (every `corpus` field at its default: wiki profile for kowiki, web profile for the "
           "reviews, exact + near dedup on, kss `punct`; the reviews source has no `documents: line`, which the "
           "config refuses for an NSMC TSV: that kind is one row, one document already). The quarter's; the full "
           "size's names `kowiki-full.txt` and the shared reviews file:\n",
           "```yaml", next(iter(results.values()))["run_yaml"].strip(), "```\n",
           "## Throughput and peak memory\n",
           "CPU-s: user + sys of the whole process tree (the stage's main process and its pool workers: the parent's "
           "`RUSAGE_CHILDREN` across the run), the primary figure — the box is shared, so wall time is disturbed. "
           "Per core = per CPU-second. Peak RSS: the main process's `ru_maxrss`; the largest worker's (its "
           "`RUSAGE_CHILDREN.ru_maxrss`: forked, so it includes pages shared with the main process at the fork); "
           f"the peak summed PSS of the tree, sampled every {next(iter(results.values()))['sample_interval_s']} s "
           "(`/proc/PID/smaps_rollup`: shared pages counted once).\n",
           "| size | documents in | wall s | CPU-s (user+sys) | documents/s per core | characters/s per core | "
           "main peak RSS MB | largest worker peak RSS MB | peak tree PSS MB | other load (CPU-s of other "
           "processes during the run) | the sampler's own CPU-s | loadavg before → after |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for size, r in results.items():
        din = c[f"kowiki.{size}"]["documents"] + c[f"reviews.{size}"]["documents"]
        cin = c[f"kowiki.{size}"]["characters"] + c[f"reviews.{size}"]["characters"]
        md.append(f"| {size} | {din:,} | {r['wall_s']:,.0f} | {r['cpu_s']:,.0f} | {din / r['cpu_s']:,.1f} | "
                  f"{cin / r['cpu_s']:,.0f} | {mb(r['child']['main_maxrss_kb'])} | "
                  f"{mb(r['child']['largest_child_maxrss_kb'])} | {mb(r['peak_tree_pss_kb'])} | "
                  f"{r['other_cpu_s']:,.0f} ({r['other_cpu_s'] / r['wall_s']:.2f} cores on average) | "
                  f"{r['sampler_cpu_s']:,.0f} | "
                  f"{' '.join(r['load_before'])} → {' '.join(r['load_after'])} |")
    md += ["", "## Sub-steps\n",
           "Wall: the step's own `timing.json` (`total_s`, from its temporary directory's creation to its "
           "completion). CPU-s, memory: from the `/proc` samples, attributed to the step whose `.NAME.tmp-PID` "
           "directory was present; `(before X)`: the gap before step X (imports, input checks, the inputs' content "
           "fingerprints, pool start-up). Sampled CPU misses each worker's last < 1 sample interval, and the total "
           "is shown against the rusage figure.\n"]
    for size, r in results.items():
        md += [f"**{size}**\n",
               "| step | wall s (timing.json) | CPU-s (sampled) | main RSS at start MB | main RSS peak MB "
               "| largest worker RSS MB | tree PSS peak MB |", "|---|---:|---:|---:|---:|---:|---:|"]
        for p in r["phases"]:
            t = r["timing"].get(p["phase"], {}).get("total_s")
            md.append(f"| {p['phase']} | {t if t is not None else '–'} | {p['cpu_s']:,.1f} | "
                      f"{mb(p['main_rss_start_kb'])} | {mb(p['main_rss_peak_kb'])} | {mb(p['worker_rss_peak_kb'])} | "
                      f"{mb(p['tree_pss_peak_kb'])} |")
        sampled = sum(p["cpu_s"] for p in r["phases"])
        md.append(f"| all (sampled) | | {sampled:,.1f} of {r['cpu_s']:,.1f} by rusage | | | | |\n")
    md += ["## What the stage did\n",
           "| size | kowiki extracted (of read) | reviews extracted (of read) | clean: kept | exact dup | near dup | "
           "decontaminated | sentences | train / valid / test documents |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for size, r in results.items():
        st = r["steps"]
        ek, er, cl = st["extract-kowiki"], st["extract-reviews"], st["clean"]
        sp = st["split"]["documents"]
        nsent = sum(v["sentences"] for k, v in st.items() if k.startswith("sentences"))
        md.append(f"| {size} | {ek['documents']:,} ({ek['pages_read']:,}) | {er['documents']:,} "
                  f"({er['pages_read']:,}) | {cl['documents']:,} ({cl['characters']:,} chars) | "
                  f"{cl['dropped'].get('duplicate', 0):,} | {cl['dropped'].get('near_duplicate', 0):,} | "
                  f"{cl['dropped'].get('decontaminated', 0):,} | {nsent:,} | "
                  f"{sp['train']:,} / {sp['valid']:,} / {sp['test']:,} |")
    md += ["", "Sentences per document by source (counted in the run's `sentences*/sentences.jsonl`):", ""]
    for size in results:
        per = sentences_by_source(Path(args.work) / size / "corpus")
        md.append(f"* {size}: " + "; ".join(f"{k} {v[0]:,} sentences in {v[1]:,} documents ({v[0] / v[1]:.1f} per "
                                            "document)" for k, v in per.items() if v[1]))
    md += ["", "Decontamination of the planted rows (the last rows of the full reviews file):\n",
           "| size | eval rows | items indexed (≥ 20 normalised chars) | planted rows reaching the merge | planted "
           "dropped | planted kept: item not indexed (too short) | planted kept: item indexed | other documents "
           "dropped (kowiki, reviews) |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    for size, r in results.items():
        dc = r["decontamination"]
        it = dc["items"]
        md.append(f"| {size} | {dc['eval_rows']:,} | {it['items'] - it['skipped_short']:,} of {it['items']:,} | "
                  f"{dc['planted_in_extract']:,} | {dc['planted_dropped']:,} | {dc['planted_kept_short']:,} | "
                  f"{dc['planted_kept_other']:,} | {dc['other_dropped']['kowiki']:,}, "
                  f"{dc['other_dropped']['reviews']:,} |")
    for size in results:
        why = planted_extract_drops(Path(args.work) / size / "corpus", meta["eval_ids"])
        if why:
            md += ["", f"{size}: planted rows dropped in the reviews' extract step (its `excluded.jsonl`): "
                   + ", ".join(f"{k} {v:,}" for k, v in sorted(why.items(), key=lambda kv: -kv[1])) + "."]
    for size, r in results.items():
        ex = r["decontamination"].get("planted_kept_other_examples") or []
        if ex:
            md += ["", f"{size}: planted rows kept although their item is indexed (the row as evaluated → the "
                       "document after the reviews' filter profile):\n"]
            md += [f"* `{e['id']}`: `{_short(e['eval_text'])}` → `{_short(e['doc_text'])}`" for e in ex[:10]]
    md += ["", "## Memory growth against the dedup index\n",
           f"The library's stated index cost: exact `ExactDedup.memory_per_document()` = {exact_b} bytes per distinct "
           f"document, near `NearDedup.memory_per_document()` = {near_b:,} bytes per indexed document. Indexed, "
           "recomputed from `clean/` after the run: exact = kept + near duplicates (the exact check comes first), "
           "near = kept documents whose normalised text has ≥ "
           f"{next(iter(results.values()))['index']['near_min_chars']}"
           " characters.\n",
           "| size | exact index documents | near index documents | stated index MB | main RSS at clean start MB | "
           "main RSS peak in clean MB | growth in clean MB | growth ÷ stated index | main peak RSS (whole run) MB | "
           "step of the main peak |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for size, r in results.items():
        ix = r["index"]
        stated = ix["exact_documents"] * exact_b + ix["near_documents"] * near_b
        cp = next((p for p in r["phases"] if p["phase"] == "clean"), None)
        top = max(r["phases"], key=lambda p: p["main_rss_peak_kb"])
        grow = (cp["main_rss_peak_kb"] - cp["main_rss_start_kb"]) * 1024 if cp else float("nan")
        md.append(f"| {size} | {ix['exact_documents']:,} | {ix['near_documents']:,} | {stated / 2**20:,.0f} | "
                  f"{mb(cp['main_rss_start_kb']) if cp else '–'} | {mb(cp['main_rss_peak_kb']) if cp else '–'} | "
                  f"{grow / 2**20:,.0f} | {grow / stated:.2f} | {mb(r['child']['main_maxrss_kb'])} | {top['phase']} |")
    if all(s in results for s in SIZES):
        q, f = results["quarter"], results["full"]
        dq = sum(c[f"{s}.quarter"]["documents"] for s in ("kowiki", "reviews"))
        df = sum(c[f"{s}.full"]["documents"] for s in ("kowiki", "reviews"))
        st = {s: results[s]["index"]["exact_documents"] * exact_b + results[s]["index"]["near_documents"] * near_b
              for s in SIZES}
        dmain = (f["child"]["main_maxrss_kb"] - q["child"]["main_maxrss_kb"]) * 1024
        dworker = (f["child"]["largest_child_maxrss_kb"] - q["child"]["largest_child_maxrss_kb"]) * 1024
        dpss = (f["peak_tree_pss_kb"] - q["peak_tree_pss_kb"]) * 1024
        dnear = f["index"]["near_documents"] - q["index"]["near_documents"]
        dstated = st["full"] - st["quarter"]
        md += ["", "Quarter → full:\n",
               f"* documents in: {dq:,} → {df:,} (+{df - dq:,}); near-index documents +{dnear:,}; exact-index "
               f"documents +{f['index']['exact_documents'] - q['index']['exact_documents']:,}",
               f"* stated index: +{dstated / 2**20:,.0f} MB (= {dstated / (df - dq):,.0f} bytes per added document in)",
               f"* main process peak RSS: +{dmain / 2**20:,.0f} MB = {dmain / (df - dq):,.0f} bytes per added "
               f"document in, {dmain / dnear:,.0f} per added near-index document; {dmain / dstated:.2f}× the stated "
               "index growth",
               f"* largest worker peak RSS: {dworker / 2**20:+,.0f} MB; peak tree PSS: {dpss / 2**20:+,.0f} MB",
               "", "The main process's peak RSS per step, and within the step (peak − RSS at its first sample):\n",
               "| step | quarter peak MB | full peak MB | Δ peak MB | within step: quarter MB | "
               "within step: full MB | "
               "Δ within step, bytes per added document in |", "|---|---:|---:|---:|---:|---:|---:|"]
        pq = {p["phase"]: p for p in q["phases"]}
        for p in f["phases"]:
            o = pq.get(p["phase"])
            if o is None:
                continue
            wq, wf = o["main_rss_peak_kb"] - o["main_rss_start_kb"], p["main_rss_peak_kb"] - p["main_rss_start_kb"]
            md.append(f"| {p['phase']} | {mb(o['main_rss_peak_kb'])} | {mb(p['main_rss_peak_kb'])} | "
                      f"{(p['main_rss_peak_kb'] - o['main_rss_peak_kb']) / 1024:+,.0f} | {mb(wq)} | {mb(wf)} | "
                      f"{(wf - wq) * 1024 / (df - dq):,.0f} |")
    if any("retained" in r for r in results.values()):
        md += ["", "### Does the index's memory go back when the clean step ends?\n",
               "The clean step alone, in a fresh process, on a hard-linked copy of the run's extract directories "
               "(`--retained`; after the timed runs, one at a time): the main process's RSS after the imports "
               "(datasketch and scipy included), its peak, after `steps.clean` returned (the index is garbage then), "
               "after `gc.collect()` and after glibc's `malloc_trim(0)`.\n",
               "| size | after imports MB | peak MB | after return MB | after gc.collect MB | after malloc_trim(0) MB "
               "| kept of the step's growth: after return / gc / trim |", "|---|---:|---:|---:|---:|---:|---|"]
        for size, r in results.items():
            t = r.get("retained")
            if t:
                grow = t["peak_kb"] - t["after_imports_kb"]
                md.append(f"| {size} | {mb(t['after_imports_kb'])} | {mb(t['peak_kb'])} | {mb(t['after_return_kb'])} "
                          f"| {mb(t['after_gc_kb'])} | {mb(t['after_malloc_trim_kb'])} | "
                          + " / ".join(f"{(t[k] - t['after_imports_kb']) / grow:.0%}" for k in
                                       ("after_return_kb", "after_gc_kb", "after_malloc_trim_kb")) + " |")
    if any("split_alone" in r for r in results.values()):
        md += ["", "### The split step alone\n",
               "`--split-alone` (after the runs): `steps.split` alone in a fresh process on a hard-linked copy of the "
               "run's `clean/` and `sentences/`, its imports (pyarrow, matplotlib) done before the first reading: as "
               "shipped and with `report: false` (runs made before the report streamed its lengths also have "
               "\"report, numpy histogram\": its histograms given a numpy array, a bench-only patch).\n",
               "| size | sentences | variant | after imports MB | peak MB | growth MB | CPU-s |",
               "|---|---:|---|---:|---:|---:|---:|"]
        for size, r in results.items():
            nsent = sum(v["sentences"] for k, v in r["steps"].items() if k.startswith("sentences"))
            for v in r.get("split_alone", []):
                md.append(f"| {size} | {nsent:,} | {v['variant']} | {mb(v['after_imports_kb'])} | "
                          f"{mb(v['peak_kb'])} | {mb(v['peak_kb'] - v['after_imports_kb'])} | {v['cpu_s']} |")
        if all("split_alone" in results.get(x, {}) for x in SIZES):
            sq, sf = ({v["variant"]: v["peak_kb"] - v["after_imports_kb"] for v in results[x]["split_alone"]}
                      for x in SIZES)
            nq, nf = (sum(v["sentences"] for k, v in results[x]["steps"].items() if k.startswith("sentences"))
                      for x in SIZES)
            md += ["", "Growth quarter → full per added sentence (+" f"{nf - nq:,}): "
                   + "; ".join(f"{k} {(sf[k] - sq[k]) * 1024 / (nf - nq):,.0f} bytes" for k in SPLIT_VARIANTS)
                   + "."]
    gc_runs = {s: json.loads((Path(args.work) / f"{s}-gc.json").read_text()) for s in SIZES
               if (Path(args.work) / f"{s}-gc.json").exists()}
    tagged = {s: [json.loads(p.read_text()) for p in sorted(Path(args.work).glob(f"{s}-*.json"))
                  if p.name != f"{s}-gc.json"] for s in SIZES}
    if gc_runs or any(tagged.values()):
        md += ["", "### The same run with `gc.collect()` after the clean step\n",
               "`--gc-after-clean`: the child wraps `steps.clean` so that the cyclic collector runs when it returns "
               "(bench-only; the package is unchanged). `--tag NAME`: the same run of another package snapshot "
               "(named in the row). Same data, same config, run after the others.\n",
               "| size | run | wall s | CPU-s | main peak RSS MB | main RSS in sentences MB | largest worker peak "
               "RSS MB | peak tree PSS MB | tree PSS peak in sentences MB | step of the main peak | other load "
               "(cores) |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
        for size in SIZES:
            rows = [("as shipped (the package in the header)", results.get(size)),
                    ("gc.collect() after clean", gc_runs.get(size))]
            rows += [(f"package {(t.get('package') or {}).get('snapshot') or t['size']}", t) for t in tagged[size]]
            if all(r is None for _, r in rows[1:]):
                continue
            for label, r in rows:
                if r is None:
                    continue
                sp = next((p for p in r["phases"] if p["phase"] == "sentences"), {})
                top = max(r["phases"], key=lambda p: p["main_rss_peak_kb"])
                md.append(f"| {size} | {label} | {r['wall_s']:,.0f} | {r['cpu_s']:,.0f} | "
                          f"{mb(r['child']['main_maxrss_kb'])} | {mb(sp.get('main_rss_peak_kb', 0))} | "
                          f"{mb(r['child']['largest_child_maxrss_kb'])} | {mb(r['peak_tree_pss_kb'])} | "
                          f"{mb(sp.get('tree_pss_peak_kb', 0))} | {top['phase']} | "
                          f"{r['other_cpu_s'] / r['wall_s']:.2f} |")
        if all(x in gc_runs for x in SIZES):
            q, f = gc_runs["quarter"], gc_runs["full"]
            dq = sum(c[f"{x}.quarter"]["documents"] for x in ("kowiki", "reviews"))
            df = sum(c[f"{x}.full"]["documents"] for x in ("kowiki", "reviews"))
            stated = [r["index"]["exact_documents"] * exact_b + r["index"]["near_documents"] * near_b for r in (q, f)]
            dmain = (f["child"]["main_maxrss_kb"] - q["child"]["main_maxrss_kb"]) * 1024
            dpss = (f["peak_tree_pss_kb"] - q["peak_tree_pss_kb"]) * 1024
            md += ["", f"With `gc.collect()` after the clean step, quarter → full (+{df - dq:,} documents in; stated "
                       f"index +{(stated[1] - stated[0]) / 2**20:,.0f} MB): main process peak RSS "
                       f"{dmain / 2**20:+,.0f} MB ({dmain / (stated[1] - stated[0]):.2f}× the stated index growth, "
                       f"{dmain / (df - dq):,.0f} bytes per added document in); peak tree PSS {dpss / 2**20:+,.0f} MB "
                       f"({dpss / (stated[1] - stated[0]):.2f}×)."]
    md.append("")
    return "\n".join(md)


def sentences_by_source(corpus: Path) -> dict[str, list[int]]:
    """source -> [sentences, documents] of a finished run (documents without sentences counted too)."""
    out: dict[str, list[int]] = {}
    for d in sorted(corpus.glob("sentences*")):
        with open(d / "sentences.jsonl", encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                v = out.setdefault(r.get("source", "-"), [0, 0])
                v[0] += len(r["sentences"])
                v[1] += 1
    return out


def package_info() -> dict:
    """Which koroberta the run imported (the child inherits this process's PYTHONPATH), and the first line of the
    SNAPSHOT.txt next to it if there is one (``commit ...``)."""
    import koroberta

    root = Path(koroberta.__file__).resolve().parents[1]
    snap = root / "SNAPSHOT.txt"
    return {"path": str(root / "koroberta"),
            "snapshot": snap.read_text().splitlines()[0] if snap.exists() else None}


def planted_extract_drops(corpus: Path, eval_ids: list[str]) -> dict[str, int]:
    """reason -> planted (evaluation) rows the reviews' extract step dropped before the merge."""
    ids = {f"reviews/{i}" for i in eval_ids}
    out: dict[str, int] = {}
    path = corpus / "extract-reviews" / "excluded.jsonl"
    if path.exists():
        with open(path, encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                if r["id"] in ids:
                    out[r["reason"]] = out.get(r["reason"], 0) + 1
    return out


def _short(s: str | None, k: int = 80) -> str:
    s = " ".join((s or "").split()).replace("`", "'").replace("|", "\\|")
    return s if len(s) <= k else s[:k] + "…"


def _rel(p: Path) -> str:
    """``p`` relative to the working directory when under it (the command as typed from the repository root)."""
    return str(p.relative_to(Path.cwd())) if p.is_relative_to(Path.cwd()) else str(p)


def _env_prefix() -> str:
    return f"PYTHONPATH={os.environ['PYTHONPATH']} " if os.environ.get("PYTHONPATH") else ""


def _cpu_model() -> str:
    m = re.search(r"model name\s*:\s*(.+)", _read("/proc/cpuinfo") or "")
    return m.group(1).strip() if m else platform.processor()


def _mem_gb() -> float:
    m = re.search(r"MemTotal:\s+(\d+)", _read("/proc/meminfo") or "")
    return int(m.group(1)) / 2**20 if m else float("nan")


def main() -> None:
    if len(sys.argv) > 3 and sys.argv[1] == "_child":
        sys.exit(child(sys.argv[2], sys.argv[4:], gc_after_clean=sys.argv[3] == "gc"))
    if len(sys.argv) == 5 and sys.argv[1] == "_clean_child":
        sys.exit(clean_child(*sys.argv[2:]))
    if len(sys.argv) == 6 and sys.argv[1] == "_split_child":
        sys.exit(split_child(*sys.argv[2:]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kowiki", type=Path, required=True, help="WikiExtractor shard (.txt.xz)")
    ap.add_argument("--reviews", type=Path, required=True, help="NSMC-format TSV: id, document, label, with header")
    ap.add_argument("--sizes", default=",".join(SIZES), help="comma-separated, run in this order: quarter, full")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--eval-rows", type=int, default=1000, help="last review rows used as the decontamination file")
    ap.add_argument("--interval", type=float, default=0.2, help="seconds between /proc samples")
    ap.add_argument("--work", type=Path, default=Path("bench/out/corpus_stage"))
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    ap.add_argument("--report-only", action="store_true", help="render the report from WORK/*.json, run nothing")
    ap.add_argument("--gc-after-clean", action="store_true",
                    help="the experiment: the same run with gc.collect() when the clean step returns (a bench-only "
                         "patch; writes WORK/SIZE-gc.json, reported beside the plain run)")
    ap.add_argument("--tag", default="", help="store the runs as WORK/SIZE-TAG.json (another package snapshot, "
                                               "via PYTHONPATH), reported beside the others")
    ap.add_argument("--split-alone", action="store_true",
                    help="after the runs: the split step alone on each size's sentences, with and without the "
                         "report (adds WORK/SIZE.split.json)")
    ap.add_argument("--retained", action="store_true",
                    help="after the runs: the clean step alone on each size's extracts, RSS after it returns (adds "
                         "WORK/SIZE.retained.json; one size at a time, after the timed runs)")
    a = ap.parse_args()
    a.work = a.work.resolve()
    meta = prepare(a.kowiki.resolve(), a.reviews.resolve(), a.work / "data", a.eval_rows)
    if not a.report_only:
        for size in a.sizes.split(","):
            if size not in SIZES:
                raise SystemExit(f"--sizes: {size!r} is not one of {', '.join(SIZES)}")
            t0 = time.time()
            r = run_size(size, meta, a.work, a.workers, a.interval, a.gc_after_clean, a.tag)
            print(f"{size}: wall {r['wall_s']} s, CPU {r['cpu_s']} s, main peak {mb(r['child']['main_maxrss_kb'])} MB "
                  f"({time.time() - t0:.0f} s with the analysis)", file=sys.stderr)
    results = {s: json.loads((a.work / f"{s}.json").read_text()) for s in SIZES if (a.work / f"{s}.json").exists()}
    if a.retained:
        for size in results:
            t0 = time.time()
            r = retained(size, a.work)
            (a.work / f"{size}.retained.json").write_text(json.dumps(r, indent=1))
            print(f"{size} retained: {r} ({time.time() - t0:.0f} s)", file=sys.stderr)
    if a.split_alone:
        for size in results:
            t0 = time.time()
            r = split_alone(size, a.work)
            (a.work / f"{size}.split.json").write_text(json.dumps(r, indent=1))
            print(f"{size} split alone: {r} ({time.time() - t0:.0f} s)", file=sys.stderr)
    for size in results:
        for part, name in (("retained", "retained"), ("split_alone", "split")):
            f = a.work / f"{size}.{name}.json"
            if f.exists():
                results[size][part] = json.loads(f.read_text())
    a.out.mkdir(parents=True, exist_ok=True)
    out = a.out / "corpus_stage.md"
    tail = ""
    if out.exists():
        old = out.read_text(encoding="utf-8")
        if KEEP_MARK in old:
            tail = old[old.index(KEEP_MARK):]
    out.write_text(render(results, meta, a) + "\n" + (tail or KEEP_MARK + "\n"), encoding="utf-8")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
