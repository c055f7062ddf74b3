"""Benchmark: our extract vs wikiextractor 3.1.0 (--no-templates) on the same dump, same run.

    .venv/bin/python bench/corpus_extract.py bench/out/kowiki-20k.xml.bz2 [--workers 1 2]

Per-core rate = pages (or MB of XML) / CPU seconds (user+sys of the whole process tree), so a run with N busy
processes is not credited N times. Residue = occurrences of markup tokens in the output text.
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
    ap.add_argument("--out", default="bench/out/extract-bench")
    a = ap.parse_args()
    dump = Path(a.dump)
    out = Path(a.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    xml_mb = sum(len(b) for b in iter(lambda f=bz2.open(dump, "rb"): f.read(1 << 24), b"")) / 1e6
    rows = []
    # ours
    for w in a.workers:
        d = out / f"ours-w{w}"
        wall, cpu = run([PY, "-m", "koroberta", "corpus", "extract", str(dump), str(d), "--workers", str(w)])
        m = json.loads((d / "extract" / "manifest.json").read_text())
        text = "\n".join(json.loads(l)["text"] for l in (d / "extract" / "docs.jsonl").open(encoding="utf-8"))
        rows.append(("koroberta extract", w, m["stats"]["pages_read"], m["stats"]["documents"], wall, cpu,
                     residue(text)))
    # wikiextractor
    for w in a.workers:
        d = out / f"wikiextractor-p{w}"
        wall, cpu = run([PY, "-m", "wikiextractor.WikiExtractor", "--no-templates", "--processes", str(w), "-q",
                         "-o", str(d), str(dump)])
        docs, parts = 0, []
        for f in sorted(d.rglob("wiki_*")):
            t = f.read_text(encoding="utf-8")
            docs += t.count("<doc ")
            parts.append(t)
        rows.append(("wikiextractor 3.1.0 --no-templates", w, rows[0][2], docs, wall, cpu, residue("".join(parts))))
    print(f"dump: {dump} ({dump.stat().st_size / 1e6:.1f} MB bz2, {xml_mb:.1f} MB XML, {rows[0][2]:,} pages); "
          f"{os.cpu_count()} cores")
    print("| tool | workers | docs | wall s | CPU s | pages/s (wall) | pages/s per core | MB/s per core | residue total | residue |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, w, pages, docs, wall, cpu, res in rows:
        print(f"| {name} | {w} | {docs:,} | {wall:.1f} | {cpu:.1f} | {pages / wall:,.0f} | {pages / cpu:,.0f} | "
              f"{xml_mb / cpu:.2f} | {sum(res.values()):,} | {' '.join(f'{k}:{v}' for k, v in res.items() if v)} |")


if __name__ == "__main__":
    main()
