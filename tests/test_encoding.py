"""One text-encoding policy for every stage (koroberta/encoding.py): UTF-8, or refused with the command that converts
it, never mojibake.

The CLI cases run ``koroberta.cli.main`` in this process (a fresh interpreter would pay the kss import per case) and
check what a user sees: exit code 2, exactly one stderr line naming the file and the fix, no traceback, no
``_COMPLETE`` marker anywhere under the output directory. Inputs are a few hundred bytes; "a bad region the sample
does not see" is made by shrinking the sample (``HEAD_BYTES`` / ``BLOCKS``), which is what a multi-GB file with a bad
middle looks like to it.
"""

from __future__ import annotations

import bz2
import shlex
from pathlib import Path

import pytest

from cli_errors import after_needs
from koroberta import encoding
from koroberta.artifacts import read_manifest
from koroberta.cli import main as cli_main
from koroberta.corpus.config import CorpusConfig
from koroberta.errors import ConfigError, InputError

SENTENCE = "한국어 문장입니다."
# 3 documents of 4 long lines: enough for `corpus build --min-chars 10` to keep every document
DOCS = [[f"{d}번 문서의 {i}번째 문장은 시험용으로 충분히 긴 한국어 문장이다." for i in range(4)] for d in range(3)]
TEXT = "\n\n".join("\n".join(doc) for doc in DOCS) + "\n"
LEGACY = {  # name -> (bytes of TEXT, what the one error line must contain)
    "cp949": (TEXT.encode("cp949"), "iconv -f CP949 -t UTF-8"),
    "euc-kr": (TEXT.encode("euc_kr"), "iconv -f CP949 -t UTF-8"),  # CP949 is a superset: one command for both
    "utf-16": (TEXT.encode("utf-16"), "iconv -f UTF-16 -t UTF-8"),
}


def _bad_middle() -> bytes:
    """Valid UTF-8 at the start and the end, 12 lines with 2 stray bytes each in the middle: 24 invalid sequences,
    3x the allowance of a small file, none of them CP949."""
    lines = TEXT.encode().split(b"\n")
    filler = [f"{i}번째 줄은 멀쩡한 UTF-8 이다.".encode() for i in range(40)]
    return b"\n".join(filler + [l + b" \xff\xfe" for l in lines[:12]] + filler) + b"\n"


@pytest.fixture
def small_sample(monkeypatch):
    """The pre-check samples only the first 256 bytes: a bad region further on is the readers' to catch."""
    monkeypatch.setattr(encoding, "HEAD_BYTES", 256)
    monkeypatch.setattr(encoding, "BLOCKS", 0)


def _run(capsys, *argv: object) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = cli_main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _one_error(rc: int, err: str, path: Path, *needles: str) -> str:
    assert rc == 2, err
    assert "Traceback" not in err, err
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith(f"error: {path}: ") and " — fix: " in line, line
    for n in needles:
        assert n in line, (n, line)
    return line


def _nothing_complete(out: Path) -> None:
    assert not out.exists() or not list(out.rglob("_COMPLETE")), sorted(out.rglob("*"))


# -- the check itself --------------------------------------------------------------------------------
def test_utf8_with_bom_and_compressed_utf8_pass(tmp_path):
    p = tmp_path / "bom.txt"
    p.write_bytes(b"\xef\xbb\xbf" + TEXT.encode())
    encoding.check_text_file(p)
    z = tmp_path / "text.txt.bz2"
    z.write_bytes(bz2.compress(TEXT.encode()))
    encoding.check_text_file(z, compressed=True)  # the corpus readers decompress
    with pytest.raises(InputError, match=r"a bz2-compressed file; this stage reads plain UTF-8 text .*bzip2 -dk"):
        encoding.check_text_file(z)  # spm / preprocess read plain text


@pytest.mark.parametrize("codec, name, iconv", [
    ("cp949", "CP949/EUC-KR Korean text", "CP949"), ("euc_kr", "CP949/EUC-KR Korean text", "CP949"),
    ("utf-16", "UTF-16LE text", "UTF-16"), ("utf-16-le", "UTF-16LE text", "UTF-16LE"),
    ("utf-16-be", "UTF-16BE text", "UTF-16BE"), ("utf-32", "UTF-32LE text", "UTF-32")])
def test_legacy_encodings_are_named_with_the_command(tmp_path, codec, name, iconv):
    p = tmp_path / "my corpus.txt"  # a space: the command must quote the paths
    p.write_bytes(TEXT.encode(codec))
    with pytest.raises(InputError) as e:
        encoding.check_text_file(p, option="encoding")
    msg = str(e.value)
    assert msg.startswith(f"{p}: {name}, not UTF-8 (")
    dst = tmp_path / "my corpus.utf8.txt"
    assert f"`iconv -f {iconv} -t UTF-8 {shlex.quote(str(p))} > {shlex.quote(str(dst))}`" in msg
    assert "(--encoding " in msg
    if "CP949" in name:
        assert f'line 1 reads "{DOCS[0][0][:30]}…" as CP949' in msg


def test_stray_bytes_within_the_allowance_pass_and_beyond_are_refused(tmp_path):
    assert encoding.allowed_invalid(500) == encoding.MIN_ALLOWED == 8
    assert encoding.allowed_invalid(10_000_000) == 100
    p = tmp_path / "stray.txt"
    lines = TEXT.encode().split(b"\n")
    p.write_bytes(b"\n".join(l + b" \xff" if i < 8 else l for i, l in enumerate(lines)))
    encoding.check_text_file(p)  # 8 invalid sequences: repaired later
    p.write_bytes(b"\n".join(l + b" \xff" if i < 9 else l for i, l in enumerate(lines)))
    with pytest.raises(InputError, match=r"stray.txt: 9 invalid UTF-8 sequences in the first [0-9]+ bytes "
                                         r"\(the first on line 1\); the file is not UTF-8.*fix: find its encoding"):
        encoding.check_text_file(p)


def test_sample_blocks_are_cut_at_lines_and_catch_a_bad_middle(tmp_path, monkeypatch):
    monkeypatch.setattr(encoding, "HEAD_BYTES", 333)  # both edges fall inside 3-byte Hangul characters
    monkeypatch.setattr(encoding, "BLOCK_BYTES", 401)
    good = (TEXT * 2).encode()
    p = tmp_path / "big.txt"
    p.write_bytes(good * 6)
    encoding.check_text_file(p)  # no character cut by a block edge is counted
    bad = b"".join(l + b"\xff\xfe\n" for l in TEXT.encode().split(b"\n")[:12])
    p.write_bytes(good + bad * 8 + good)  # the head is clean: the blocks spread over the rest find the bad lines
    with pytest.raises(InputError, match=r"invalid UTF-8 sequences in [0-9,]+ bytes sampled across it \(the first "
                                         r"on the line at byte [0-9,]+\); the file is not UTF-8"):
        encoding.check_text_file(p)


def test_cp949_reading_needs_korean_not_stray_bytes():
    assert encoding.cp949_reading(SENTENCE.encode("cp949")) == (SENTENCE, 8)
    utf8 = "대한민국의 수도는 서울이다.".encode()
    for raw in (utf8[:7], utf8[:20] + b"\xff" + utf8[20:], utf8[:9] + b"\xb0\xa1" + utf8[9:],  # cut, stray, pair
                b"formula_\xb0a12", b"caf\xe9 au lait"):
        assert encoding.cp949_reading(raw) is None, raw


def test_convert_on_read_names_the_byte(tmp_path):
    raw = ("가나다\n" * 5).encode("cp949")
    data = raw[:13] + b"\xff" + raw[13:]  # byte 13: not CP949
    p = tmp_path / "k.txt"
    p.write_bytes(data)
    import io

    with pytest.raises(InputError, match=r"k.txt: byte 13 \(FF\) is not valid cp949"):
        list(encoding.iter_decoded_lines(io.BytesIO(data), "cp949", p, block=4))  # the error spans two blocks
    lines = list(encoding.iter_decoded_lines(io.BytesIO(TEXT.encode("utf-16")), "utf-16", p, block=7))
    assert "".join(lines) == TEXT and lines[0] == DOCS[0][0] + "\n"


def test_encoding_option_is_a_codec(capsys, tmp_path):
    assert CorpusConfig(encoding="CP949").encoding == "cp949"
    assert CorpusConfig(encoding="EUC-KR").encoding == "euc_kr"
    assert CorpusConfig(encoding="UTF8").encoding == "utf-8"
    for bad in ("klingon", "base64"):
        with pytest.raises(ConfigError, match=f"corpus.encoding='{bad}' is (not a known text encoding|a base64)"):
            CorpusConfig(encoding=bad)
    src = tmp_path / "in.txt"
    src.write_text(TEXT, encoding="utf-8")
    rc, _, err = _run(capsys, "corpus", "build", src, tmp_path / "o", "--encoding", "klingon")
    assert rc == 2 and err.count("\n") == 1 and "--encoding 'klingon'" in err and "Traceback" not in err
    rc, _, err = _run(capsys, "corpus", "build", src, tmp_path / "o", "--encoding", "cp949")
    _one_error(rc, err, src, "already UTF-8", "remove `encoding: cp949`")
    _nothing_complete(tmp_path / "o")


def test_eval_readers_give_the_same_message(tmp_path):
    from koroberta.eval.readers import read_single_tsv

    p = tmp_path / "nsmc.tsv"
    p.write_bytes(f"id\tdocument\tlabel\n1\t{SENTENCE}\t1\n2\t재미없는 영화였다\t0\n".encode("cp949"))
    with pytest.raises(InputError, match=r"CP949/EUC-KR Korean text, not UTF-8 \(line 2 reads .*iconv -f CP949"):
        read_single_tsv(p, "document", "label", ["0", "1"], layout="NSMC", column_fix="-")


# -- every stage, through the CLI --------------------------------------------------------------------
@pytest.mark.parametrize("name", LEGACY)
def test_corpus_build_refuses_legacy_text(capsys, tmp_path, name):
    data, needle = LEGACY[name]
    src = tmp_path / f"{name}.txt"
    src.write_bytes(data)
    out = tmp_path / "corpus"
    rc, stdout, err = _run(capsys, "corpus", "build", src, out, "--min-chars", "10")
    _one_error(rc, err, src, needle, "--encoding")
    assert stdout == "" and not out.exists()  # refused before any directory was made


def test_corpus_build_refuses_a_file_bad_only_in_the_middle(capsys, tmp_path, small_sample):
    src = tmp_path / "mid.txt"
    src.write_bytes(_bad_middle())
    encoding.check_text_file(src)  # the sample sees nothing wrong ...
    out = tmp_path / "corpus"
    rc, _, err = _run(capsys, "corpus", "build", src, out, "--min-chars", "10")
    _one_error(rc, err, src, "invalid UTF-8 sequences in the first", "the file is not UTF-8")  # ... the reader does
    _nothing_complete(out)


def test_corpus_stray_byte_is_repaired_and_counted(capsys, tmp_path):
    src = tmp_path / "stray.txt"
    src.write_bytes(TEXT.encode().replace(b"\n\n", b"\n\xff\n", 1))  # one stray byte on a line of its own
    rc, _, err = _run(capsys, "corpus", "extract", src, tmp_path / "corpus", "--min-chars", "10")
    assert rc == 0, err
    assert read_manifest(tmp_path / "corpus" / "extract")["stats"]["invalid_utf8_replaced"] == 1


def test_corpus_encoding_option_converts_on_read(capsys, tmp_path):
    """``--encoding cp949`` on CP949 text gives the split text of the UTF-8 copy, byte for byte."""
    outs = {}
    for name, data, opts in (("utf8", TEXT.encode(), []), ("cp949", TEXT.encode("cp949"), ["--encoding", "cp949"])):
        src = tmp_path / name / "docs.txt"  # one name: a plain-text document's id is <file name>:<index>
        src.parent.mkdir()
        src.write_bytes(data)
        outs[name] = tmp_path / f"corpus-{name}"
        rc, _, err = _run(capsys, "corpus", "build", src, outs[name], "--min-chars", "10", "--valid-fraction", "0.3",
                          "--test-fraction", "0.3", "--no-report", *opts)
        assert rc == 0, err
    texts = {n: [(o / "split" / f"{s}.txt").read_bytes() for s in ("train", "valid", "test")] for n, o in outs.items()}
    assert texts["cp949"] == texts["utf8"] and b"".join(texts["utf8"]).count("문서".encode()) == 12
    assert read_manifest(outs["cp949"] / "extract")["config"]["encoding"] == "cp949"


def test_corpus_encoding_option_reads_wikiextractor_and_utf16(capsys, tmp_path):
    """WikiExtractor output in CP949 or UTF-16 (a BOM; detect_format reads UTF-8 bytes only) extracts to the
    documents of its UTF-8 copy; a codec the bytes do not fit, or an ``encoding:`` on a dump, is refused."""
    body = "첫 문단은 충분히 길어야 한다. 그래서 여러 단어를 넣는다. " * 3
    doc = "".join(f'<doc id="{i}" url="u" title="{t}">\n{t}\n\n{body}\n</doc>\n' for i, t in (("7", "가나"), ("9", "다라")))
    docs = {}
    for codec in ("utf-8", "cp949", "utf-16"):
        src = tmp_path / codec / "AA" / "wiki_00"
        src.parent.mkdir(parents=True)
        src.write_bytes(doc.encode(codec))
        out = tmp_path / f"out-{codec}"
        rc, _, err = _run(capsys, "corpus", "extract", src.parent.parent, out, "--min-chars", "10", "--encoding", codec)
        assert rc == 0, err
        docs[codec] = (out / "extract" / "docs.jsonl").read_bytes()
    assert docs["cp949"] == docs["utf-8"] == docs["utf-16"] and docs["utf-8"].count(b'"id"') == 2
    src = tmp_path / "cp949" / "AA" / "wiki_00"
    rc, _, err = _run(capsys, "corpus", "extract", src, tmp_path / "o1", "--encoding", "utf-16")
    _one_error(rc, err, src, "not utf-16 text: no byte-order mark and no NUL bytes")
    dump = Path(__file__).parent / "fixtures" / "kowiki-tiny.xml.bz2"
    rc, _, err = _run(capsys, "corpus", "extract", dump, tmp_path / "o2", "--encoding", "cp949")
    assert rc == 2 and err.count("\n") == 1 and "applies to plain text and WikiExtractor sources" in err, err
    _nothing_complete(tmp_path / "o1")
    _nothing_complete(tmp_path / "o2")


@pytest.mark.parametrize("name", LEGACY)
def test_spm_train_refuses_legacy_text(capsys, tmp_path, name):
    data, needle = LEGACY[name]
    src = tmp_path / f"{name}.txt"
    src.write_bytes(data)
    out = tmp_path / "spm"
    rc, _, err = _run(capsys, "spm", "train", "--train-text", src, "--out", out, "--vocab-size", "60",
                      "--no-hard-vocab-limit")
    line = _one_error(rc, err, src, needle)
    assert "--encoding" not in line  # spm has no convert-on-read option: the fix is the command
    assert not out.exists()


def test_spm_train_stray_byte_counted_and_bad_middle_refused(capsys, tmp_path, monkeypatch):
    src = tmp_path / "train.txt"
    src.write_bytes(TEXT.encode().replace(b"\n\n", b"\n\xff\n", 1))
    rc, _, err = _run(capsys, "spm", "train", "--train-text", src, "--out", tmp_path / "ok", "--vocab-size", "60",
                      "--no-hard-vocab-limit", "--threads", "1")
    assert rc == 0, err
    assert read_manifest(tmp_path / "ok")["stats"]["repairs"]["non_utf8"] == 1
    monkeypatch.setattr(encoding, "HEAD_BYTES", 256)
    monkeypatch.setattr(encoding, "BLOCKS", 0)
    src.write_bytes(_bad_middle())
    out = tmp_path / "bad"
    rc, _, err = _run(capsys, "spm", "train", "--train-text", src, "--out", out, "--vocab-size", "60",
                      "--no-hard-vocab-limit", "--threads", "1")
    _one_error(rc, err, src, "invalid UTF-8 sequences in the first", "the file is not UTF-8")  # not spm's wrapper
    _nothing_complete(out)


def _split_dir(tmp_path: Path, tiny_split: Path, test_bytes: bytes) -> Path:
    d = tmp_path / "split"
    d.mkdir()
    for s in ("train", "valid"):
        (d / f"{s}.txt").write_bytes((tiny_split / f"{s}.txt").read_bytes())
    (d / "test.txt").write_bytes(test_bytes)
    return d


@pytest.mark.parametrize("name", LEGACY)
def test_preprocess_refuses_legacy_text(capsys, tmp_path, tiny_vocab, tiny_split, name):
    data, needle = LEGACY[name]
    d = _split_dir(tmp_path, tiny_split, data)
    out = tmp_path / "bin"
    rc, _, err = _run(capsys, "preprocess", "run", d, tiny_vocab, out)
    _one_error(rc, err, d / "test.txt", needle)  # test.txt, the last split, refused before train.txt is encoded
    assert not out.exists()


def test_preprocess_stray_byte_counted_and_bad_middle_refused(capsys, tmp_path, tiny_vocab, tiny_split,
                                                              monkeypatch):
    d = _split_dir(tmp_path, tiny_split, TEXT.encode().replace(b"\n\n", b"\n\xff\n", 1))
    rc, _, err = _run(capsys, "preprocess", "run", d, tiny_vocab, tmp_path / "ok")
    assert rc == 0, err
    assert read_manifest(tmp_path / "ok")["stats"]["splits"]["test"]["repairs"]["non_utf8"] == 1
    monkeypatch.setattr(encoding, "HEAD_BYTES", 256)
    monkeypatch.setattr(encoding, "BLOCKS", 0)
    (d / "test.txt").write_bytes(_bad_middle())
    out = tmp_path / "bad"
    rc, _, err = _run(capsys, "preprocess", "run", d, tiny_vocab, out)
    # found while encoding (past the pre-check's sample): after the stage's needs line, then the one error line
    _one_error(rc, after_needs(err, "preprocess"), d / "test.txt", "invalid UTF-8 sequences in the first",
               "the file is not UTF-8")
    _nothing_complete(out)
