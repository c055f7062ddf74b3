"""Where the CPU time of `koroberta corpus extract` goes, part by part, on one dump (1 process).

    .venv/bin/python bench/corpus_parts.py bench/out/kowiki-20k.xml.bz2 [--repeat 3]

Times (CPU seconds, fastest of --repeat runs, parts interleaved within each round):
  bz2           decompressing the dump (indexed_bzip2 if installed, and the stdlib decoder for comparison)
  xml           iter_dump minus its decompression (expat + the page collector)
  markup parts  each pass of wikitext_to_lines over the article pages, in pipeline order
  lines         the rest of wikitext_to_lines: normal-form check and the per-line loop
  json          one docs.jsonl line per document
The sum of the parts is close to, not equal to, the CPU time of the command (start-up, batching, writing).
For before/after figures run it with PYTHONPATH pointing at an older checkout (`git worktree add`).
"""

from __future__ import annotations

import argparse
import bz2
import html
import resource
from pathlib import Path

from koroberta.corpus import sources
from koroberta.corpus import wikitext as W
from koroberta.corpus.config import CorpusConfig

try:
    from koroberta.corpus.steps import _doc_json
except ImportError:  # a checkout from before 2026-11-30 (to measure "before" numbers): what it did instead
    import json

    def _doc_json(ordinal: int, pid: str, title: str, text: str) -> str:
        return json.dumps({"ord": ordinal, "id": pid, "title": title, "text": text}, ensure_ascii=False) + "\n"


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def drain(f) -> None:
    while f.read(1 << 20):
        pass


def markup_passes() -> list[tuple[str, object]]:
    def comments(t: str) -> str:
        if "<!--" in t:
            t = W._COMMENT.sub("", t)
            cut = t.find("<!--")
            t = t[:cut] if cut >= 0 else t
        return t

    return [
        ("comments", comments),
        ("block tags", lambda t: W._BLOCK.sub("", t) if "<" in t else t),
        ("refs", lambda t: W._strip_refs(t) if "<" in t else t),
        ("templates/tables", W.strip_braces),
        ("links", W.strip_links),
        ("ext links, quotes, magic, html tags", lambda t: W._HTML_TAG.sub(
            lambda m: " " if m.group().lower().startswith("<br") else "",
            W._MAGIC.sub("", W._QUOTES.sub("", W._EXTLINK.sub(lambda m: m.group(1), t))))),
        ("entities", lambda t: html.unescape(t) if "&" in t else t),
    ]


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
        for name, fn in markup_passes():
            t = cpu()
            texts = [fn(x) for x in texts]  # type: ignore[operator]
            rec(name, cpu() - t)
        t = cpu()
        out = [W.wikitext_to_lines(p.text, drop_sections=cfg.drop_sections) for p in pages]
        rec("wikitext_to_lines (all)", cpu() - t)
        t = cpu()
        for p, ls in zip(pages, out):
            _doc_json(0, p.id, p.title, "\n".join(ls))
        rec("json", cpu() - t)
    uses_fast = hasattr(sources, "_open_dump") and "bz2 (indexed_bzip2, 1 thread)" in best  # older: stdlib bz2
    bz = best["bz2 (indexed_bzip2, 1 thread)"] if uses_fast else best["bz2 (stdlib)"]
    best["xml"] = best["iter_dump (bz2 + xml)"] - bz
    parts = sum(best[n] for n, _ in markup_passes())
    best["lines (normal form + per-line loop)"] = best["wikitext_to_lines (all)"] - parts
    print(f"{a.dump}: {len(pages):,} article pages; CPU s, fastest of {a.repeat}")
    print("| part | CPU s |\n|---|---:|")
    for name, v in best.items():
        print(f"| {name} | {v:.2f} |")


if __name__ == "__main__":
    main()
