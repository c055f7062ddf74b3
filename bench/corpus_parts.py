"""Where the CPU time of `koroberta corpus extract` goes, part by part, on one dump (1 process).

    .venv/bin/python bench/corpus_parts.py bench/out/kowiki-20k.xml.bz2 [--repeat 3]

Times (CPU seconds, fastest of --repeat runs, parts interleaved within each round):
  bz2           decompressing the dump (indexed_bzip2 if installed, and the stdlib decoder for comparison)
  xml           iter_dump minus its decompression (expat + the page collector)
  markup parts  each pass of wikitext_to_lines over the article pages, in pipeline order
  lines         the rest of wikitext_to_lines: normal-form check and the per-line loop
  json          one docs.jsonl line per document
The sum of the parts is close to, not equal to, the CPU time of the command (start-up, batching, writing).
"""

from __future__ import annotations

import argparse
import bz2
import resource
from pathlib import Path

from koroberta.corpus import sources
from koroberta.corpus import wikitext as W
from koroberta.corpus.config import CorpusConfig
from koroberta.corpus.steps import doc_json


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def drain(f) -> None:
    while f.read(1 << 20):
        pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dump", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    cfg = CorpusConfig()
    pages = [p for p in sources.iter_dump(a.dump, sources.ReadStats()) if p.ns == 0 and not p.redirect
             and not W.is_redirect_text(p.text) and not W.is_disambiguation(p.text)]
    best: dict[str, float] = {}

    def rec(name: str, seconds: float) -> None:
        best[name] = min(best.get(name, float("inf")), seconds)

    for _ in range(a.repeat):
        try:
            import indexed_bzip2

            t = cpu()
            with indexed_bzip2.open(str(a.dump), parallelization=1) as f:
                drain(f)
            rec("bz2 (indexed_bzip2, 1 thread)", cpu() - t)
        except ImportError:
            pass
        t = cpu()
        with bz2.open(a.dump) as f:
            drain(f)
        rec("bz2 (stdlib)", cpu() - t)
        t = cpu()
        for _p in sources.iter_dump(a.dump, sources.ReadStats()):
            pass
        rec("iter_dump (bz2 + xml)", cpu() - t)
        texts = [p.text for p in pages]
        for name, fn in W.MARKUP_PASSES:
            t = cpu()
            texts = [fn(x) for x in texts]
            rec(name, cpu() - t)
        t = cpu()
        out = [W.wikitext_to_lines(p.text, drop_sections=cfg.drop_sections) for p in pages]
        rec("wikitext_to_lines (all)", cpu() - t)
        t = cpu()
        for p, ls in zip(pages, out):
            doc_json(0, p.id, p.title, "\n".join(ls))
        rec("json", cpu() - t)
    bz = best.get("bz2 (indexed_bzip2, 1 thread)", best["bz2 (stdlib)"])  # the decoder iter_dump uses
    best["xml"] = best["iter_dump (bz2 + xml)"] - bz
    parts = sum(best[n] for n, _ in W.MARKUP_PASSES)
    best["lines (normal form + per-line loop)"] = best["wikitext_to_lines (all)"] - parts
    print(f"{a.dump}: {len(pages):,} article pages; CPU s, fastest of {a.repeat}")
    print("| part | CPU s |\n|---|---:|")
    for name, v in best.items():
        print(f"| {name} | {v:.2f} |")


if __name__ == "__main__":
    main()
