"""A plain-text source without blank lines is not read as one document (issue "Real size", item 3).

With the default ``documents: blank`` (a blank line between documents), a file of reviews or sentences -- one per
line, no blank lines -- used to be read as ONE document: held whole in memory, sentence-split in one process and put
whole into one split, so valid/test were empty and preprocess failed hours later ("split has no non-blank lines").
Now a document that grows past ``MAX_DOC_CHARS`` is refused while it is read, in one line naming the file and the
fix, before any split output exists; ``documents: line`` (``corpus.documents`` / ``--documents`` for a single
``source:``, the source's ``documents:`` in ``sources:``) reads the same file one document per line.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from koroberta.artifacts import read_manifest
from koroberta.cli import main
from koroberta.corpus import sources
from koroberta.corpus.config import EXTRACT_FIELDS, CorpusConfig
from koroberta.corpus.sources import MAX_DOC_CHARS, ReadStats, iter_source
from koroberta.errors import ConfigError, InputError

REVIEW = "{i}번째 관람평: 배우들의 연기가 좋았고 이야기도 끝까지 " \
         "지루하지 않았다. 다시 보고 싶다."


def _reviews(path: Path, n: int) -> Path:
    """``n`` distinct one-line reviews, no blank line: the file the issue describes."""
    path.write_text("".join(REVIEW.format(i=i) + "\n" for i in range(n)), encoding="utf-8")
    return path


def _error_line(capsys, argv: list[str], *needles: str) -> str:
    """The CLI's house rule: exit code 2, one stderr line naming the problem and the fix, no traceback."""
    assert main(argv) == 2
    cap = capsys.readouterr()
    lines = [l for l in cap.err.splitlines() if l.strip()]
    assert len(lines) == 1 and "Traceback" not in cap.err, cap.err
    assert lines[0].startswith("error: ") and " — fix: " in lines[0], lines[0]
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def _nothing_complete(out: Path) -> None:
    assert not (out / "split").exists() and not list(out.rglob("_COMPLETE")) and not list(out.rglob("docs.jsonl"))


def test_file_without_blank_lines_is_refused_at_extract(tmp_path, capsys):
    """At the real bound: ~3.5 MB of reviews (1.2 M characters) is refused by `corpus build` at extract time."""
    n = MAX_DOC_CHARS // len(REVIEW.format(i=10_000)) + 1_000
    src = _reviews(tmp_path / "reviews.txt", n)
    out = tmp_path / "out"
    line = _error_line(capsys, ["corpus", "build", str(src), str(out)],
                       f"error: {src}: ", " lines and ", " characters without a blank line (lines 1-",
                       "documents: blank", "set `documents: line`", "--documents line",
                       "or put a blank line between the documents")
    assert f"{MAX_DOC_CHARS:,}" in line
    _nothing_complete(out)


def test_same_file_with_documents_line_builds_all_three_splits(tmp_path, capsys, monkeypatch):
    """One 400-line file both ways (the bound lowered so that kss has little to split): `documents: blank` is
    refused in one line; `--documents line` builds a corpus whose valid and test hold documents."""
    monkeypatch.setattr(sources, "MAX_DOC_CHARS", 5_000)
    src = _reviews(tmp_path / "reviews.txt", 400)
    common = ["--min-chars", "10", "--valid-fraction", "0.1", "--test-fraction", "0.1", "--no-report",
              "--workers", "1"]  # in-process: kss (~10 s to import) is imported once, not per worker
    _error_line(capsys, ["corpus", "build", str(src), str(tmp_path / "blank"), *common],
                f"error: {src}: ", "without a blank line", "documents: line")
    _nothing_complete(tmp_path / "blank")

    assert main(["corpus", "build", str(src), str(tmp_path / "line"), "--documents", "line", *common]) == 0
    st = read_manifest(tmp_path / "line" / "split")["stats"]
    assert sum(st["documents"].values()) == 400
    assert st["documents"]["valid"] > 0 and st["documents"]["test"] > 0, st["documents"]
    for part in ("train", "valid", "test"):
        assert (tmp_path / "line" / "split" / f"{part}.txt").read_text(encoding="utf-8").strip()
    extract = read_manifest(tmp_path / "line" / "extract")
    assert extract["config"]["documents"] == "line"  # a change of rule redoes the extraction


def test_memory_stays_bounded_on_a_large_file(tmp_path):
    """50 MB without a blank line: the reader stops after about the bound, not after reading the whole file (before,
    it yielded one 50 MB document). tracemalloc counts the reader's lines and buffers: peak far below the file."""
    src = tmp_path / "sentences.txt"
    src.write_bytes(("문장 하나가 한 줄에 있다. " * 4 + "\n").encode("utf-8") * 500_000)
    assert src.stat().st_size > 50e6
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="without a blank line") as e:
            for _ in iter_source(src, ReadStats()):
                pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "\n" not in str(e.value) and str(e.value).startswith(f"{src}: ")
    assert peak < 25e6, peak


def test_file_without_any_line_break_is_refused_with_bounded_memory(tmp_path):
    """The extreme case, a 50 MB file that is one line: a line is read with a byte limit, so it never sits in
    memory whole (a line holding more than MAX_DOC_CHARS characters is refused under either rule)."""
    src = tmp_path / "one-line.txt"
    src.write_bytes("줄바꿈 없는 글. ".encode("utf-8") * 2_600_000)
    assert src.stat().st_size > 50e6
    for documents in ("blank", "line"):
        tracemalloc.start()
        try:
            with pytest.raises(InputError, match="line 1 runs over 4 MB without a line break") as e:
                for _ in iter_source(src, ReadStats(), documents=documents):
                    pass
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert "\n" not in str(e.value) and "documents: line" in str(e.value)
        assert peak < 40e6, peak


def test_documents_line_refuses_a_line_over_the_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "MAX_DOC_CHARS", 100)
    src = tmp_path / "t.txt"
    src.write_text("짧은 줄\n" + "긴" * 101 + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 2 holds 101 characters"):
        list(iter_source(src, ReadStats(), documents="line"))


def test_ordinary_file_is_read_as_before_up_to_the_bound(tmp_path, monkeypatch):
    """Blank lines between documents: the same documents and ids as always. A document of exactly the bound is
    kept; one character more is refused, naming its lines."""
    monkeypatch.setattr(sources, "MAX_DOC_CHARS", 100)
    src = tmp_path / "docs.txt"
    src.write_text("첫 문단.\n둘째 문단.\n\n\n두 번째 문서.\n  \n" + "가" * 60 + "\n" + "나" * 40 + "\n",
                   encoding="utf-8")
    pages = list(iter_source(src, ReadStats()))
    assert [(p.id, p.text) for p in pages] == [("docs.txt:0", "첫 문단.\n둘째 문단."),
                                               ("docs.txt:1", "두 번째 문서."),
                                               ("docs.txt:2", "가" * 60 + "\n" + "나" * 40)]
    with open(src, "a", encoding="utf-8") as f:
        f.write("다\n")
    with pytest.raises(InputError, match=r"3 lines and 101 characters without a blank line \(lines 7-9\)"):
        list(iter_source(src, ReadStats()))


def test_documents_line_on_a_source_that_is_not_plain_text_is_refused(tmp_path, capsys, tiny_dump):
    """A dump marks its documents itself: `--documents line` would do nothing there, so it is an error."""
    _error_line(capsys, ["corpus", "build", str(tiny_dump), str(tmp_path / "out"), "--documents", "line"],
                f"error: {tiny_dump}: `documents: line` applies to plain text, and this source is a MediaWiki dump",
                "remove `documents:`")
    _nothing_complete(tmp_path / "out")


def test_corpus_documents_is_one_rule_with_the_sources_list():
    """corpus.documents is for a single `source:`; with `sources:` each source says its own. At the default the
    identity is unchanged (corpora built before the field stay complete); `line` keys the extraction."""
    spec = {"name": "reviews", "weight": 1.0, "profile": None, "documents": "line"}
    with pytest.raises(ConfigError, match="documents='line' is for a single `source:`"):
        CorpusConfig(documents="line", sources=[spec])
    assert "documents" not in CorpusConfig().identity() and "documents" not in CorpusConfig().part(*EXTRACT_FIELDS)
    assert CorpusConfig(documents="line").part(*EXTRACT_FIELDS)["documents"] == "line"
    with pytest.raises(ConfigError, match="corpus.documents='lines' is not one of blank, line"):
        CorpusConfig(documents="lines")


def test_cp949_file_without_any_line_break_is_refused_with_bounded_memory(tmp_path):
    """The same bound when the source is decoded from another codec (``encoding: cp949``): the decoder's pending
    line is checked as it grows, so a 12 MB one-line CP949 file is refused without being held whole."""
    src = tmp_path / "one-line-cp949.txt"
    src.write_bytes("줄바꿈 없는 글. ".encode("cp949") * 1_200_000)
    assert src.stat().st_size > 12e6
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match=f"line 1 runs over {MAX_DOC_CHARS:,} characters without a line break"):
            for _ in iter_source(src, ReadStats(), encoding="cp949"):
                pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 25e6, peak
