"""Where the spm fused encode (``encode_to_mmap``) spends its CPU, and what that predicts for 16 workers (bench).

    .venv/bin/python bench/encode_scaling.py --text /tmp/enc/kowiki-30m.txt --spm-model /tmp/enc/vocab16k/spm.model \
        --baseline-rev HEAD --workers 1 2 --repeat 2

Runs ``encode_to_mmap`` of the working tree (``new``) and of ``--baseline-rev``'s encode.py (``old``, written to
bench/out/encode_scaling/ and imported from there), interleaved, ``--repeat`` times per worker count, and checks
that every run wrote the same .bin bytes and sizes. Per run it splits the CPU seconds of the whole process tree:

* ``read_s``: the reader (``_chunks``: reading, UTF-8 decoding, repair checks) on the main thread;
* ``main_other_s``: the rest of the main thread (whatever the writer loop does there);
* ``pythreads_s``: the other Python threads of the main process (the encoder's executor thread, a process pool's
  feeder/manager threads): sentencepiece converts its results to Python objects in the calling thread, so its
  GIL-held part is counted here, not with the native encode;
* ``native_s``: the main process's other CPU: sentencepiece's native threads (they run without the GIL);
* ``children_s``: worker processes (sampled from /proc just before their pool shuts down).

Everything that runs under the main process's GIL is serial: S = read + main_other + pythreads (an upper bound:
numpy and file writes inside them release the GIL); the rest is parallel: P = native + children. The model for W
workers is Amdahl's ``S + P / W`` (no overlap) and the pipeline bound ``max(S, P / W)`` (perfect overlap); the
speed-up ceiling is ``(S + P) / S``. The machine's own cores decide the measured walls; the model does not need
16 of them.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import numpy as np

OUT = Path("bench/out/encode_scaling")
_thread_cpu: list[tuple[str, float]] = []  # (name, CPU s) of every Python thread that ended (see _track)
_worker_cpu: list[float] = []  # CPU s of every worker process of a pool that shut down
_worker_peak_rss: list[int] = []  # and its peak RSS


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _peak_rss(pid: int | str = "self") -> int:
    """VmHWM: the process's peak resident set, bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _track() -> None:
    """Record each Python thread's CPU time when it ends (executor threads end when the encoder closes), and each
    worker process's just before its pool shuts down: a fork server's workers are not our children, so
    ``os.times`` never sees them."""
    run = threading.Thread.run

    def tracked(self: threading.Thread) -> None:
        try:
            run(self)
        finally:
            _thread_cpu.append((self.name, time.thread_time()))

    threading.Thread.run = tracked  # type: ignore[method-assign]
    shutdown = ProcessPoolExecutor.shutdown

    def sampled(self: ProcessPoolExecutor, *a: Any, **kw: Any) -> None:
        for pid in list(self._processes or {}):  # type: ignore[attr-defined]
            _worker_cpu.append(_proc_cpu(pid))
            _worker_peak_rss.append(_peak_rss(pid))
        shutdown(self, *a, **kw)

    ProcessPoolExecutor.shutdown = sampled  # type: ignore[method-assign]


def load_baseline(rev: str) -> ModuleType:
    """``rev``'s koroberta/preprocess/encode.py as a module of its own (its imports resolve to the working tree)."""
    src = subprocess.run(["git", "show", f"{rev}:koroberta/preprocess/encode.py"], check=True, capture_output=True,
                         text=True).stdout
    sha = subprocess.run(["git", "rev-parse", "--short", rev], check=True, capture_output=True,
                         text=True).stdout.strip()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"encode_{sha}.py"
    path.write_text(src, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"encode_{sha}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # a process pool pickles its functions by module name
    spec.loader.exec_module(mod)
    mod.__baseline_rev__ = sha  # type: ignore[attr-defined]
    return mod


def run_once(mod: ModuleType, sp: Any, text: Path, workers: int, chunk_lines: int, dtype: type) -> dict[str, Any]:
    reader = [0.0]
    orig_chunks = mod._chunks

    def timed_chunks(*args: Any, **kw: Any) -> Iterator[Any]:
        it = orig_chunks(*args, **kw)
        while True:
            t = time.thread_time()
            try:
                item = next(it)
            except StopIteration:
                reader[0] += time.thread_time() - t
                return
            reader[0] += time.thread_time() - t
            yield item

    mod._chunks = timed_chunks
    sizes: list[np.ndarray] = []
    dst = OUT / "run.bin"
    _thread_cpu.clear()
    _worker_cpu.clear()
    _worker_peak_rss.clear()
    t0, main0, os0 = time.perf_counter(), time.thread_time(), os.times()
    try:
        with open(dst, "wb") as f:
            stats = mod.encode_to_mmap(mod.SpmEncoder(sp, workers), text, f, dtype, chunk_lines=chunk_lines,
                                       on_sizes=sizes.append)
    finally:
        mod._chunks = orig_chunks
    wall, main, os1 = time.perf_counter() - t0, time.thread_time() - main0, os.times()
    proc = (os1.user - os0.user) + (os1.system - os0.system)
    children = sum(_worker_cpu)
    pythreads = sum(c for _, c in _thread_cpu)
    native = max(0.0, proc - main - pythreads)
    h = hashlib.sha256(dst.read_bytes())
    h.update(np.concatenate(sizes).astype(np.int64).tobytes())
    serial = main + pythreads
    parallel = native + children
    return {"wall_s": wall, "read_s": reader[0], "main_other_s": main - reader[0], "pythreads_s": pythreads,
            "native_s": native, "children_s": children, "serial_s": serial, "parallel_s": parallel,
            "worker_peak_rss_mb": max(_worker_peak_rss, default=0) / 2**20, "tokens": stats.tokens,
            "digest": h.hexdigest()[:16]}


def model(serial: float, parallel: float, w: int) -> dict[str, float]:
    return {f"amdahl_wall{w}_s": serial + parallel / w, f"pipeline_wall{w}_s": max(serial, parallel / w),
            "ceiling_x": (serial + parallel) / serial}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--text", required=True)
    ap.add_argument("--spm-model", required=True)
    ap.add_argument("--baseline-rev", default="HEAD", help="git revision whose encode.py is 'old'")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--chunk-lines", type=int, default=20000)
    ap.add_argument("--model-workers", type=int, default=16)
    ap.add_argument("--only", choices=["old", "new"], help="time one variant only")
    a = ap.parse_args()
    import koroberta.preprocess.encode as new
    from koroberta.databin import best_fitting_int_dtype
    from koroberta.layout import OFFSET, load_processor

    _track()
    old = load_baseline(a.baseline_rev)
    variants = {"old": old, "new": new}
    if a.only:
        variants = {a.only: variants[a.only]}
    sp = load_processor(a.spm_model)
    text = Path(a.text)
    dtype = best_fitting_int_dtype(sp.get_piece_size() + OFFSET + 1)  # the .bin dtype preprocess would pick
    first_start = None
    if "new" in variants and hasattr(new, "PROCESS_MIN_BYTES"):
        # the fork server starts once per process (the CLI's first large split pays it): timed here, not in a run
        small = OUT / "warmup.txt"
        with open(text, encoding="utf-8") as f:
            small.write_text("".join(line for _, line in zip(range(2000), f)), encoding="utf-8")
        t = time.perf_counter()
        with open(OUT / "warmup.bin", "wb") as f:
            new.encode_to_mmap(new.SpmEncoder(sp, 2, processes=True), small, f, dtype, on_sizes=lambda s: None)
        first_start = round(time.perf_counter() - t, 3)
    runs: dict[str, list[dict[str, Any]]] = {}
    for r in range(a.repeat):
        for w in a.workers:
            for name, mod in variants.items():
                res = run_once(mod, sp, text, w, a.chunk_lines, dtype)
                runs.setdefault(f"{name}_w{w}", []).append(res)
                print(f"rep {r} {name} w{w}: " + " ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                                        for k, v in res.items()), file=sys.stderr, flush=True)
    digests = {res["digest"] for rs in runs.values() for res in rs}
    summary: dict[str, Any] = {"text": str(text), "bytes": text.stat().st_size, "cpus": os.cpu_count(),
                               "baseline_rev": old.__baseline_rev__, "chunk_lines": a.chunk_lines,
                               "first_pool_with_server_start_s": first_start,
                               "all_outputs_identical": len(digests) == 1,
                               "tokens": runs[next(iter(runs))][0]["tokens"]}
    for key, rs in runs.items():
        # CPU split: the median run's; wall: the best run's (the box is shared)
        best = {k: round(min(x[k] for x in rs), 3) for k in ("wall_s",)}
        med = {k: round(float(np.median([x[k] for x in rs])), 3)
               for k in ("read_s", "main_other_s", "pythreads_s", "native_s", "children_s", "serial_s", "parallel_s",
                         "worker_peak_rss_mb")}
        m = model(med["serial_s"], med["parallel_s"], a.model_workers)
        summary[key] = {**best, "walls": [round(x["wall_s"], 3) for x in rs], **med,
                        **{k: round(v, 3) for k, v in m.items()}}
    for name in variants:
        ws = [summary.get(f"{name}_w{w}", {}).get("wall_s") for w in (1, 2)]
        if all(ws):
            summary[f"{name}_scaling_1_to_2"] = round(ws[0] / ws[1], 3)
    print(json.dumps(summary, indent=1))
    # the same as a markdown table (bench/results/encode_scaling.md)
    w16 = a.model_workers
    print(f"| run | wall (best) | read | main other | py threads | native | workers | serial S | parallel P | "
          f"S + P/{w16} | max(S, P/{w16}) | ceiling |\n|---|" + "---|" * 11, file=sys.stderr)
    for key, r in summary.items():
        if isinstance(r, dict):
            print(f"| {key} | {r['wall_s']:.2f} | {r['read_s']:.2f} | {r['main_other_s']:.2f} | "
                  f"{r['pythreads_s']:.2f} | {r['native_s']:.2f} | {r['children_s']:.2f} | {r['serial_s']:.2f} | "
                  f"{r['parallel_s']:.2f} | "
                  f"{r[f'amdahl_wall{w16}_s']:.2f} | {r[f'pipeline_wall{w16}_s']:.2f} | {r['ceiling_x']:.2f}x |",
                  file=sys.stderr)


if __name__ == "__main__":
    main()
