"""Reader CPU of the SLURM corpus array's extract shards on a multistream dump (issue 24 item 4).

Three ways to read a dump, each reader in a fresh process, its CPU time (``time.process_time``: every thread of
the process) taken around the reading alone (imports and interpreter start-up excluded; a stream shard's pass over
the index included):

* ``one``: one process reads the whole dump sequentially (``koroberta corpus build``, or one shard);
* ``streams``: N shards, each decoding the header stream and its own run of streams (``koroberta.corpus.multistream``);
* ``ord``: N shards, each decoding the whole dump and keeping ``ord % N`` (what a dump without its index gets).

The dump is synthesized: ``make_kowiki_dump.py`` writes real kowiki prose with generated markup, and one run of it
holds at most ~35k pages (~37 MB as multistream bz2), so several runs (different ``--seed``) are concatenated, the
page ids of file k offset by k * 10,000,000, and written 100 pages per stream with
:func:`koroberta.corpus.multistream.write_multistream` (the dump is built once, then reused)::

    T=../shared/data/kowiki-text/kowiki-extracted-AA.txt.xz D=bench/out/multistream
    python3 ../shared/tools/make_kowiki_dump.py $T $D/kowiki-64k.xml --pages 64000 -q
    python3 ../shared/tools/make_kowiki_dump.py $T $D/kowiki-seed2.xml --pages 64000 --seed 2 -q
    python3 ../shared/tools/make_kowiki_dump.py $T $D/kowiki-seed3.xml --pages 64000 --seed 3 -q
    nice .venv/bin/python bench/multistream_bench.py $D/kowiki-64k.xml $D/kowiki-seed2.xml $D/kowiki-seed3.xml \\
        --out $D --shards 4 --rounds 2 --check-output

``--check-output`` also runs ``extract`` (N stream shards, and one process) and the clean step's merge, and
compares ``clean/docs.jsonl`` byte for byte. Results: bench/results/multistream.md.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DUMP = "kowiki-bench-multistream.xml.bz2"
_PAGE_ID = re.compile(rb"<id>(\d+)</id>")


def build(xmls: list[Path], out: Path, workers: int) -> Path:
    """The multistream dump (and its index) of the pages of ``xmls``, in order; reused when it exists."""
    from koroberta.corpus.multistream import expected_index_name, split_dump, write_multistream
    from koroberta.corpus.sources import open_binary

    dump = out / DUMP
    if dump.is_file() and (out / expected_index_name(dump)).is_file():
        return dump
    out.mkdir(parents=True, exist_ok=True)
    files = [open_binary(x) for x in xmls]
    header, _, _ = split_dump(open_binary(xmls[0]))

    def pages():
        for k, f in enumerate(files):
            _, it, _ = split_dump(f)
            for page in it:  # the page's own id is its first <id>; ids stay unique across the copies
                yield _PAGE_ID.sub(lambda m: b"<id>%d</id>" % (int(m.group(1)) + k * 10_000_000), page, count=1)

    t = time.time()
    n = write_multistream(header, pages(), dump, out / expected_index_name(dump), workers=workers)
    print(f"built {dump}: {n:,} pages, {dump.stat().st_size / 1e6:.1f} MB in {time.time() - t:.0f} s", flush=True)
    return dump


def child(mode: str, dump: str, shard: int, num_shards: int, stdlib: bool) -> None:
    """One reader (run in its own process): prints {cpu_s, wall_s, pages, kept, compressed_bytes} as JSON.

    ``one``/``streams``/``ord``: the extract step's reader (``iter_source``, indexed_bzip2 when installed, one
    thread) -- XML parsing included; ``stdlib`` then picks nothing. ``decode``: the bz2 decoding of the shard's
    bytes alone (``num_shards`` 1: the whole file), with ``stdlib`` bz2 or indexed_bzip2 over the same
    :class:`~koroberta.corpus.multistream.SegmentReader`, the decoder comparison behind ``_open_streams``."""
    import bz2

    from koroberta.corpus.multistream import SegmentReader, index_for, shard_range
    from koroberta.corpus.sources import ReadStats, iter_source

    path = Path(dump)
    t0, w0 = time.process_time(), time.perf_counter()
    streams = shard_range(index_for(path), path, shard, num_shards) if mode in ("streams", "decode") else None
    kept = pages = 0
    if mode == "decode":
        raw = SegmentReader(path, [(0, streams.header_end), (streams.start, streams.end)])
        if stdlib:
            f = bz2.BZ2File(raw)
        else:
            import indexed_bzip2

            f = indexed_bzip2.open(raw, parallelization=1)
        while f.read(1 << 20):
            pass
        f.close()
        compressed = raw.bytes_read
    else:
        st = ReadStats()
        for p in iter_source(path, st, streams=streams):
            if mode != "ord" or p.ord % num_shards == shard:
                kept += 1
        pages, compressed = st.pages, st.compressed_bytes
    print(json.dumps({"cpu_s": time.process_time() - t0, "wall_s": time.perf_counter() - w0, "pages": pages,
                      "kept": kept, "compressed_bytes": compressed}))


def run_reader(mode: str, dump: Path, shard: int, n: int, stdlib: bool) -> dict:
    r = subprocess.run([sys.executable, __file__, "--child", mode, str(dump), str(shard), str(n),
                        "1" if stdlib else "0"], capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def check_output(dump: Path, out: Path, n: int) -> bool:
    """extract in N stream shards + clean vs one process: clean/docs.jsonl byte-identical."""
    from koroberta.corpus.config import CorpusConfig
    from koroberta.corpus.steps import clean, extract

    cfg = CorpusConfig(keep_intermediates=True)
    got = {}
    for k in (1, n):
        d = out / f"check-{k}"
        for i in range(k):
            extract(cfg, dump, d, shard=i, num_shards=k, workers=2)
        got[k] = (clean(cfg, d, num_shards=k) / "docs.jsonl").read_bytes()
    print(f"clean/docs.jsonl: {len(got[1]):,} bytes, {n} stream shards identical to one process: "
          f"{got[1] == got[n]}", flush=True)
    return got[1] == got[n]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, mode, dump, shard, n, stdlib = sys.argv
        child(mode, dump, int(shard), int(n), stdlib == "1")
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("xml", nargs="+", type=Path, help="dumps made by make_kowiki_dump.py (.xml or .xml.bz2)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "multistream")
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2, help="rounds, interleaved; the fastest of each is reported")
    ap.add_argument("--workers", type=int, default=2, help="processes compressing the dump when it is built")
    ap.add_argument("--check-output", action="store_true")
    a = ap.parse_args()
    dump = build(a.xml, a.out, a.workers)
    size = dump.stat().st_size
    n = a.shards
    plan = [("one", False, 1), ("streams", False, n), ("ord", False, n),
            ("decode", False, 1), ("decode", False, n), ("decode", True, 1), ("decode", True, n)]
    best: dict[tuple[str, bool], dict] = {}
    for rnd in range(a.rounds):
        for mode, stdlib, k in plan:
            runs = [run_reader(mode, dump, i, k, stdlib) for i in range(k)]
            tot = {"cpu_s": sum(r["cpu_s"] for r in runs), "wall_s": sum(r["wall_s"] for r in runs),
                   "pages": sum(r["pages"] for r in runs), "kept": sum(r["kept"] for r in runs),
                   "compressed_bytes": sum(r["compressed_bytes"] for r in runs),
                   "per_shard_cpu": [round(r["cpu_s"], 2) for r in runs]}
            print(f"round {rnd}: {mode:7s} {'stdlib' if stdlib else 'indexed_bzip2':13s} x{k}: "
                  f"{tot['cpu_s']:7.2f} CPU-s (shards {tot['per_shard_cpu']}), {tot['kept']:,} pages kept, "
                  f"{tot['compressed_bytes'] / size:.4f}x the file decoded", flush=True)
            key = (mode, stdlib, k)
            if key not in best or tot["cpu_s"] < best[key]["cpu_s"]:
                best[key] = tot
    print(f"\ndump: {dump.name}, {size / 1e6:.1f} MB, {best['one', False, 1]['pages']:,} pages; {n} shards; "
          f"fastest of {a.rounds} rounds\n")
    print("| reader | decoder | processes | CPU-s (sum) | x one process | pages kept | compressed bytes decoded |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for mode, stdlib, k in plan:
        b = best[mode, stdlib, k]
        base = best["decode", stdlib, 1]["cpu_s"] if mode == "decode" else best["one", False, 1]["cpu_s"]
        kept = f"{b['kept']:,}" if mode != "decode" else "-"
        print(f"| {'decode only' if mode == 'decode' else mode} | {'stdlib bz2' if stdlib else 'indexed_bzip2'} | "
              f"{k} | {b['cpu_s']:.2f} | {b['cpu_s'] / base:.2f} | {kept} | {b['compressed_bytes'] / size:.4f}x |")
    if a.check_output:
        check_output(dump, a.out, n)


if __name__ == "__main__":
    main()
