#!/usr/bin/env python3
"""Cut the small, attributed samples that the demo and the tests ship with, from ../shared (developers only).

Deterministic: the same shared/ files give byte-identical fixtures (bz2/xz have no timestamps).

    python3 scripts/dev/make_fixtures.py ../shared

Outputs
  data/demo/kowiki-demo.xml.bz2         ~430 pages of the kowiki-sample dump (every 7th page + the edge cases)
  tests/fixtures/kowiki-tiny.xml.bz2    ~70 pages (every 50th page + the edge cases), for the end-to-end test
  tests/fixtures/kowiki-tiny.truth.jsonl.bz2 / data/demo/... truth rows of the pages kept
  data/demo/nsmc-demo.tsv               4,000 NSMC-format rows (first rows of ratings_train.rebuilt.txt)
  tests/fixtures/nsmc-tiny.tsv          400 rows
"""
import bz2
import json
import re
import sys
from pathlib import Path

EDGE_TITLES = {"U.S. 뉴스 & 월드 리포트", "틀라토아니", "파일럿 (드라마)"}


def cut_dump(shared: Path, out_xml: Path, out_truth: Path, stride: int) -> int:
    data = bz2.open(shared / "data/kowiki/kowiki-sample.xml.bz2", "rt", encoding="utf-8").read()
    truth = [json.loads(l) for l in bz2.open(shared / "data/kowiki/kowiki-sample.truth.jsonl.bz2", "rt", encoding="utf-8")]
    starts = [m.start() for m in re.finditer(r"^  <page>\n", data, flags=re.M)]
    end = data.rindex("</mediawiki>")
    head, pages = data[: starts[0]], [data[s:e] for s, e in zip(starts, starts[1:] + [end])]
    assert len(pages) == len(truth)
    keep = []
    malformed_kept = 0
    for i, (page, t) in enumerate(zip(pages, truth)):
        edge = t["title"] in EDGE_TITLES or t.get("kind") == "empty"
        if t.get("malformed") and malformed_kept < 6:
            edge, malformed_kept = True, malformed_kept + 1
        if i % stride == 0 or edge:
            keep.append(i)
    xml = head + "".join(pages[i] for i in keep) + "</mediawiki>\n"
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    out_xml.write_bytes(bz2.compress(xml.encode("utf-8"), 9))
    out_truth.write_bytes(bz2.compress("".join(json.dumps(truth[i], ensure_ascii=False) + "\n" for i in keep).encode(), 9))
    return len(keep)


def cut_nsmc(shared: Path, out: Path, rows: int) -> None:
    lines = (shared / "data/nsmc/ratings_train.rebuilt.txt").read_text(encoding="utf-8").splitlines(keepends=True)
    out.write_text("".join(lines[: rows + 1]), encoding="utf-8")


def main() -> None:
    shared = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared")
    root = Path(__file__).resolve().parents[2]
    n = cut_dump(shared, root / "data/demo/kowiki-demo.xml.bz2", root / "data/demo/kowiki-demo.truth.jsonl.bz2", 7)
    m = cut_dump(shared, root / "tests/fixtures/kowiki-tiny.xml.bz2", root / "tests/fixtures/kowiki-tiny.truth.jsonl.bz2", 50)
    cut_nsmc(shared, root / "data/demo/nsmc-demo.tsv", 4000)
    cut_nsmc(shared, root / "tests/fixtures/nsmc-tiny.tsv", 400)
    print(f"demo dump: {n} pages; tiny dump: {m} pages")


if __name__ == "__main__":
    main()
