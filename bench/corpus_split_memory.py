"""The split step's memory before and after streaming the report's lengths (issue "Real size", item 7).

Before: the split kept a Python int per document and per sentence for the report (sorted copies, then a list handed
to matplotlib); after: :class:`koroberta.corpus.report.LengthStats` (fixed-size bucket counts). Each row is
``steps.split`` alone, in a fresh process, on a hard-linked copy of a finished corpus run's ``clean/`` and
``sentences*/`` (``bench/corpus_stage.py``'s runs: ``WORK/SIZE/corpus`` and ``WORK/SIZE/run.yaml``), with the
report; "before" imports the package as committed at ``--base`` (``git archive``, into a temporary directory, on
``PYTHONPATH``), "after" the working tree. The split's outputs (``*.txt``, ``hf/*.parquet``, ``report.md``, the
PNGs, ``_COMPLETE``; not the manifest and ``timing.json``, which record times) are hashed: the two must be
byte-identical.

    .venv/bin/python bench/corpus_split_memory.py [--work bench/out/corpus_stage] [--sizes quarter full]

Prints a Markdown table: RSS after the imports, peak RSS (``ru_maxrss``), growth, CPU seconds; then the growth per
added sentence between the two sizes, and whether the outputs match.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(run_yaml: str, corpus: str, result: str) -> int:
    """``steps.split`` in this process (the package on ``sys.path``: the base snapshot or the tree)."""
    import koroberta
    import matplotlib.pyplot  # noqa: F401  (imported before the first reading, as the report's own import would be)
    import numpy  # noqa: F401  (the streamed report imports it; the old one did through matplotlib)
    import pyarrow.parquet  # noqa: F401

    from koroberta.corpus import steps
    from koroberta.pipeline import PipelineConfig

    cfg = PipelineConfig.load(run_yaml).corpus
    rss = int(re.search(r"VmRSS:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))
    t0, w0 = time.process_time(), time.perf_counter()
    out = steps.split(cfg, Path(corpus), force=True)
    cpu, wall = time.process_time() - t0, time.perf_counter() - w0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    hashes = {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
              for p in sorted(out.rglob("*")) if p.is_file() and p.name not in ("manifest.json", "timing.json")}
    Path(result).write_text(json.dumps({"package": str(Path(koroberta.__file__).parent), "after_imports_kb": rss,
                                        "peak_kb": peak, "cpu_s": round(cpu, 2), "wall_s": round(wall, 2),
                                        "hashes": hashes}))
    return 0


def run(size_dir: Path, pythonpath: str | None, scratch: Path) -> dict:
    """One child on a fresh hard-linked copy of ``size_dir``'s clean and sentence directories."""
    dst = scratch / "corpus"
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    for d in (size_dir / "corpus").iterdir():
        if d.is_dir() and (d.name == "clean" or d.name.startswith("sentences")):
            shutil.copytree(d, dst / d.name, copy_function=os.link)
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    res = scratch / "result.json"
    subprocess.run([sys.executable, __file__, "_child", str(size_dir / "run.yaml"), str(dst), str(res)], env=env,
                   check=True, cwd=scratch)
    r = json.loads(res.read_text())
    shutil.rmtree(dst)
    return r


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "_child":
        return child(*sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=ROOT / "bench/out/corpus_stage", help="corpus_stage.py's WORK")
    ap.add_argument("--sizes", nargs="+", default=["quarter", "full"])
    ap.add_argument("--base", default="HEAD", help="the commit whose package is 'before' (default: HEAD)")
    a = ap.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory(prefix="split-mem-") as tmp:
        base = Path(tmp) / "base"
        base.mkdir()
        # a read-only export of the committed package: the repository's own state is left alone
        tar = subprocess.run(["git", "-C", str(ROOT), "archive", a.base, "koroberta"], check=True,
                             capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=tar, check=True)
        for size in a.sizes:
            sd = a.work / size
            nsent = sum(json.loads((d / "manifest.json").read_text())["stats"].get("sentences", 0)
                        for d in (sd / "corpus").iterdir() if d.name.startswith("sentences")
                        and (d / "manifest.json").exists())
            for label, pp in (("before", str(base)), ("after", None)):
                r = run(sd, pp, Path(tmp) / "scratch")
                expect = str(base / "koroberta") if pp else str(ROOT / "koroberta")
                assert r["package"] == expect, (r["package"], expect)  # the child imported the intended package
                rows[size, label] = r | {"sentences": nsent}
    mb = lambda kb: f"{kb / 1024:,.0f}"  # noqa: E731
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", a.base], capture_output=True, text=True)
    print(f"before = `{a.base}` ({rev.stdout.strip()}), after = the working tree\n")
    print("| size | sentences | package | after imports MB | peak MB | growth MB | CPU-s | wall s |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for (size, label), r in rows.items():
        print(f"| {size} | {r['sentences']:,} | {label} | {mb(r['after_imports_kb'])} | {mb(r['peak_kb'])} | "
              f"{mb(r['peak_kb'] - r['after_imports_kb'])} | {r['cpu_s']} | {r['wall_s']} |")
    if len(a.sizes) == 2:
        s0, s1 = a.sizes
        dn = rows[s1, "after"]["sentences"] - rows[s0, "after"]["sentences"]
        grow = {lb: ((rows[s1, lb]["peak_kb"] - rows[s1, lb]["after_imports_kb"])
                     - (rows[s0, lb]["peak_kb"] - rows[s0, lb]["after_imports_kb"])) * 1024 / dn
                for lb in ("before", "after")}
        print(f"\nGrowth {s0} → {s1} per added sentence (+{dn:,}): "
              + "; ".join(f"{lb} {g:,.0f} bytes" for lb, g in grow.items()) + ".")
    same = {size: rows[size, "before"]["hashes"] == rows[size, "after"]["hashes"] for size in a.sizes}
    for size in a.sizes:
        h = rows[size, "after"]["hashes"]
        print(f"\n{size}: {len(h)} output files ({', '.join(sorted(h))}): "
              + ("byte-identical before/after" if same[size] else "DIFFER: "
                 + ", ".join(k for k in h if rows[size, "before"]["hashes"].get(k) != h[k])))
    return 0 if all(same.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
