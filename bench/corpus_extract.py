"""Benchmark: our extract vs wikiextractor 3.1.0 (--no-templates) on the same dump, same run.

    .venv/bin/python bench/corpus_extract.py bench/out/kowiki-20k.xml.bz2 [--workers 1 2] [--repeat 3]

Per-core rate = pages (or MB of XML) / CPU seconds (user+sys of the whole process tree), so a run with N busy
processes is not credited N times. Residue = occurrences of markup tokens in the output text.
Each configuration runs ``--repeat`` times, rounds interleaved (ours, theirs, ours, ...), and the table takes the
fastest run of each: on a shared VM the CPU time of one run moves by 10-20 %, and noise only ever adds time. All
CPU times are printed too.
"""

from __future__ import annotations

import argparse
import bz2
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

RESIDUE = ["{{", "}}", "[[", "]]", "<ref", "{|", "|}", "파일:", "분류:"]
PY = sys.executable


def run(cmd: list[str]) -> tuple[float, float]:
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def residue(text: str) -> dict[str, int]:
    return {t: text.count(t) for t in RESIDUE}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dump")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=3, help="runs per configuration; the fastest is reported")
    ap.add_argument("--out", default="bench/out/extract-bench")
    a = ap.parse_args()
    dump = Path(a.dump)
    out = Path(a.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    with bz2.open(dump, "rb") as f:
        xml_mb = sum(len(b) for b in iter(lambda: f.read(1 << 24), b"")) / 1e6
    runs: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for _ in range(a.repeat):
        for w in a.workers:
            d = out / f"ours-w{w}"
            shutil.rmtree(d, ignore_errors=True)
            runs.setdefault(("ours", w), []).append(
                run([PY, "-m", "koroberta", "corpus", "extract", str(dump), str(d), "--workers", str(w)]))
        for w in a.workers:
            d = out / f"wikiextractor-p{w}"
            shutil.rmtree(d, ignore_errors=True)
            runs.setdefault(("wikiextractor", w), []).append(
                run([PY, "-m", "wikiextractor.WikiExtractor", "--no-templates", "--processes", str(w), "-q",
                     "-o", str(d), str(dump)]))
    rows = []
    for w in a.workers:
        d = out / f"ours-w{w}"
        m = json.loads((d / "extract" / "manifest.json").read_text())
        text = "\n".join(json.loads(l)["text"] for l in (d / "extract" / "docs.jsonl").open(encoding="utf-8"))
        rows.append(("koroberta extract", w, m["stats"]["pages_read"], m["stats"]["documents"], runs["ours", w],
                     residue(text)))
    for w in a.workers:
        d = out / f"wikiextractor-p{w}"
        docs, parts = 0, []
        for f in sorted(d.rglob("wiki_*")):
            t = f.read_text(encoding="utf-8")
            docs += t.count("<doc ")
            parts.append(t)
        rows.append(("wikiextractor 3.1.0 --no-templates", w, rows[0][2], docs, runs["wikiextractor", w],
                     residue("".join(parts))))
    print(f"dump: {dump} ({dump.stat().st_size / 1e6:.1f} MB bz2, {xml_mb:.1f} MB XML, {rows[0][2]:,} pages); "
          f"{os.cpu_count()} cores; fastest of {a.repeat} run(s) each")
    print("| tool | workers | docs | wall s | CPU s | pages/s (wall) | pages/s per core | MB/s per core | residue total | residue |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    best = {}
    for name, w, pages, docs, rs, res in rows:
        wall, cpu = min(r[0] for r in rs), min(r[1] for r in rs)
        best[name.split()[0], w] = cpu
        print(f"| {name} | {w} | {docs:,} | {wall:.1f} | {cpu:.1f} | {pages / wall:,.0f} | {pages / cpu:,.0f} | "
              f"{xml_mb / cpu:.2f} | {sum(res.values()):,} | {' '.join(f'{k}:{v}' for k, v in res.items() if v)} |")
    print()
    for name, w, _, _, rs, _ in rows:
        print(f"CPU s per run, {name}, {w} worker(s): {', '.join(f'{r[1]:.1f}' for r in rs)}")
    for w in a.workers:
        print(f"per-core speed-up vs wikiextractor, {w} worker(s): "
              f"{best['wikiextractor', w] / best['koroberta', w]:.2f}x")

if __name__ == "__main__":
    main()
