"""A source directory holds one kind of input: every file is classified (its first 4 KB), not just the first.

Before, the kind of a directory was the kind of its first file, so a directory of text files with a dump, an image or
WikiExtractor output among them was read entirely as plain text -- raw XML and binary included -- and text among
WikiExtractor files was skipped without a word. Each case runs the CLI in-process and checks the house rule: exit
code 2, one stderr line naming the offending file and the fix, no traceback, nothing complete-looking.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path

import pytest

from koroberta.cli import main
from koroberta.corpus.sources import detect_format
from koroberta.errors import InputError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PARA = "이 문단은 시험용으로 충분히 긴 한국어 문장을 담고 있다. 두 번째 문장도 있다.\n"
WIKIEXTRACTOR = f'<doc id="7" url="https://ko.wikipedia.org/wiki?curid=7" title="가나">\n가나\n\n{PARA}</doc>\n'
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10"


def _error_line(capsys, argv: list[str], out: Path, *needles: str) -> str:
    assert main(argv) == 2
    cap = capsys.readouterr()
    lines = [l for l in cap.err.splitlines() if l.strip()]
    assert len(lines) == 1 and "Traceback" not in cap.err, cap.err
    line = lines[0]
    assert line.startswith("error: ") and " — fix: " in line, line
    for n in needles:
        assert n in line, (n, line)
    assert not out.exists() or not list(out.rglob("_COMPLETE"))
    return line


def _text_dir(root: Path) -> Path:
    d = root / "src"
    d.mkdir()
    (d / "a.txt").write_text(PARA + "\n" + PARA, encoding="utf-8")
    return d


@pytest.mark.parametrize("odd, content, what", [
    ("b.xml.bz2", None, "a MediaWiki XML dump"),
    ("c.png", PNG, "a PNG image"),
    ("wiki_00", WIKIEXTRACTOR.encode(), "WikiExtractor output"),
    ("d.dat", b"PAR1" + bytes(64), "a Parquet file"),  # by magic: the name says nothing
    ("f.txt", b"text, then a NUL\x00 byte", "binary data"),
])
def test_text_directory_with_another_kind_is_refused(tmp_path, capsys, odd, content, what):
    src = _text_dir(tmp_path)
    if content is None:
        (src / odd).write_bytes((FIXTURES / "kowiki-tiny.xml.bz2").read_bytes())
    else:
        (src / odd).write_bytes(content)
    out = tmp_path / "out"
    line = _error_line(capsys, ["corpus", "build", str(src), str(out)], out,
                       f"error: {src / odd}: {what}", "among the plain text files", "(first: a.txt)",
                       "put one kind of input per directory", f"move {odd} out of {src}")
    assert not out.exists(), line


def test_utf16_file_among_text_is_named(tmp_path, capsys):
    """UTF-16 has NUL bytes, so it is another kind to the directory check; the encoding check then says what it is
    and how to convert it (koroberta.encoding)."""
    src = _text_dir(tmp_path)
    (src / "e.txt").write_bytes("UTF-16 텍스트\n".encode("utf-16"))
    _error_line(capsys, ["corpus", "build", str(src), str(tmp_path / "out")], tmp_path / "out",
                f"error: {src / 'e.txt'}: UTF-16")


def test_the_issue_mix_names_the_first_file_of_another_kind(tmp_path, capsys):
    """The issue's directory: plain text, a .xml.bz2 dump, a PNG and WikiExtractor output."""
    src = _text_dir(tmp_path)
    (src / "b.xml.bz2").write_bytes((FIXTURES / "kowiki-tiny.xml.bz2").read_bytes())
    (src / "c.png").write_bytes(PNG)
    (src / "wiki_00").write_text(WIKIEXTRACTOR, encoding="utf-8")
    _error_line(capsys, ["corpus", "extract", str(src), str(tmp_path / "out")], tmp_path / "out",
                str(src / "b.xml.bz2"), "MediaWiki XML dump")


def test_wikiextractor_directory_with_plain_text_is_refused(tmp_path, capsys):
    src = tmp_path / "extracted"
    (src / "AA").mkdir(parents=True)
    (src / "AA" / "wiki_00").write_text(WIKIEXTRACTOR, encoding="utf-8")
    (src / "AA" / "wiki_01").write_bytes(bz2.compress(WIKIEXTRACTOR.encode()))  # WikiExtractor --compress
    (src / "AB").mkdir()
    (src / "AB" / "notes.txt").write_text(PARA, encoding="utf-8")  # would have been skipped silently
    assert detect_format(src / "AA") == "wikiextractor"
    _error_line(capsys, ["corpus", "build", str(src), str(tmp_path / "out")], tmp_path / "out",
                str(src / "AB" / "notes.txt"), "plain text among the WikiExtractor output files")


def test_one_kind_directories_are_accepted(tmp_path):
    text = _text_dir(tmp_path)
    (text / "b.txt.gz").write_bytes(gzip.compress(PARA.encode()))
    (text / "c.txt.xz").write_bytes(lzma.compress(PARA.encode()))
    (text / "d.txt.bz2").write_bytes(bz2.compress(PARA.encode()))
    (text / "empty.txt").write_bytes(b"")  # fits any kind
    (text / ".hidden.png").write_bytes(PNG)  # hidden files are not inputs
    assert detect_format(text) == "text"
    many = tmp_path / "many"  # more than 16 files: sniffed by the thread pool, same answer
    many.mkdir()
    for i in range(40):
        (many / f"wiki_{i:02d}.bz2").write_bytes(bz2.compress(WIKIEXTRACTOR.encode()))
    assert detect_format(many) == "wikiextractor"
    (many / "wiki_99").write_bytes(PNG)
    with pytest.raises(InputError, match=r"wiki_99: a PNG image among the WikiExtractor output files"):
        detect_format(many)


def test_single_binary_file_and_all_empty_directory(tmp_path, capsys):
    img = tmp_path / "photo.png"
    img.write_bytes(PNG)
    _error_line(capsys, ["corpus", "build", str(img), str(tmp_path / "out")], tmp_path / "out",
                f"error: {img}: a PNG image, not text", "plain text")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.txt").write_bytes(b"")
    (empty / "b.txt.gz").write_bytes(gzip.compress(b""))
    _error_line(capsys, ["corpus", "build", str(empty), str(tmp_path / "out")], tmp_path / "out",
                f"error: {empty}: directory holds only empty files")


def test_a_koroberta_output_is_no_corpus_source(tmp_path, capsys):
    """A run's corpus directory (or its split/) as the source: its manifest.json files were read as JSON Lines (a
    traceback from datasets on an empty one), its .txt splits, Parquet and .png report as one mixed source."""
    split = tmp_path / "corpus" / "split"
    split.mkdir(parents=True)
    (split / "train.txt").write_text(PARA, encoding="utf-8")
    (split / "manifest.json").write_text('{"stage": "corpus.split", "identity_sha256": "0"}', encoding="utf-8")
    out = tmp_path / "out"
    _error_line(capsys, ["corpus", "build", str(split), str(out)], out,
                f"error: {split}: the output of koroberta's corpus.split stage, not a corpus source", "split/train.txt")
    _error_line(capsys, ["corpus", "build", str(split.parent), str(out)], out,
                f"error: {split.parent}: a directory of koroberta outputs (split: corpus.split)")
    assert main(["corpus", "extract", str(split / "train.txt"), str(out)]) == 0  # one of its files: its text
