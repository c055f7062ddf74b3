"""Make the spm/preprocess benchmark text from WikiExtractor output (bench input, not part of the pipeline).

    .venv/bin/python bench/prep_kowiki_text.py ../shared/data/kowiki-text/kowiki-extracted-AA.txt.xz \
        bench/out/spm/kowiki-AA.sent.txt

``<doc ...>`` lines and the title line after them are dropped, ``</doc>`` becomes a blank line (a document
boundary), and each paragraph is split into sentences with a rough regex — a fast stand-in for the corpus stage's
kss output, good enough to time spm and the encoders (they only see lines). Prints line/sentence/document counts.
"""

from __future__ import annotations

import argparse
import lzma
import re
from pathlib import Path

_SENT = re.compile(r"(?<=[.!?])\s+(?=[^\s\d])")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", help="WikiExtractor output (.txt or .txt.xz)")
    ap.add_argument("out", help="one sentence per line, blank line between documents")
    a = ap.parse_args()
    src, out = Path(a.src), Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    opener = lzma.open if src.suffix == ".xz" else open
    docs = sents = 0
    tmp = out.with_name(out.name + ".tmp")
    with opener(src, "rt", encoding="utf-8") as f, open(tmp, "w", encoding="utf-8") as w:
        title_next = False
        for line in f:
            line = line.strip()
            if line.startswith("<doc "):
                title_next = True
                continue
            if title_next:
                title_next = False
                continue
            if line == "</doc>":
                w.write("\n")
                docs += 1
                continue
            for s in _SENT.split(line):
                s = " ".join(s.split())
                if s:
                    w.write(s + "\n")
                    sents += 1
    tmp.replace(out)
    print(f"{out}: {sents:,} sentences, {docs:,} documents")


if __name__ == "__main__":
    main()
