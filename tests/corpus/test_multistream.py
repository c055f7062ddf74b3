"""Multistream dumps (koroberta.corpus.multistream): each extract shard decodes only its own bz2 streams, each
sentences shard reads only its own byte range of clean/docs.jsonl, and the corpus stays byte-identical to one
process; a stream index that does not fit its dump is a one-line error; `corpus download --multistream` fetches the
dump and its index. The dumps are written by `write_multistream` from the pages of the tiny fixture dump."""

from __future__ import annotations

import bz2
import hashlib
import json
import logging
import shutil
from pathlib import Path

import pytest

from koroberta.artifacts import read_manifest
from koroberta.cli import main
from koroberta.corpus.config import CorpusConfig
from koroberta.corpus.multistream import convert_dump, index_for, shard_range, split_dump, write_multistream
from koroberta.corpus.sources import ReadStats, iter_dump
from koroberta.corpus.steps import _read_jsonl_shard, clean, extract, sentences, split
from koroberta.errors import InputError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TINY = FIXTURES / "kowiki-tiny.xml.bz2"
#: valid/test fractions large enough that the 32 short pages fill every split; intermediates kept to compare them
CFG = CorpusConfig(valid_fraction=0.2, test_fraction=0.2, keep_intermediates=True)


def _xml() -> bytes:
    return bz2.decompress(TINY.read_bytes())


@pytest.fixture(scope="module")
def short(tmp_path_factory) -> Path:
    """A multistream dump of the tiny dump's pages under 6,000 bytes (kss on the long articles would cost tens of
    seconds per build for nothing this module checks), 3 pages per stream: 11 streams, redirects and other
    namespaces among them."""
    d = tmp_path_factory.mktemp("short")
    with bz2.open(TINY) as f:
        header, pages, trailer = split_dump(f)
        kept = [p for p in pages if len(p) < 6000]
    assert write_multistream(header, kept, d / "short-multistream.xml.bz2", d / "short-multistream-index.txt.bz2",
                             pages_per_stream=3) == len(kept) == 32
    return d / "short-multistream.xml.bz2"


@pytest.fixture(scope="module")
def reference(short, tmp_path_factory) -> Path:
    """`corpus build` of the dump in one process (it reads the multistream file sequentially)."""
    out = tmp_path_factory.mktemp("ref")
    for step in (extract(CFG, short, out), clean(CFG, out), sentences(CFG, out), split(CFG, out)):
        assert (step / "_COMPLETE").is_file()
    return out


def test_written_dump_is_the_same_xml_as_streams_and_index(tmp_path):
    dump = tmp_path / "tiny-multistream.xml.bz2"
    assert convert_dump(TINY, dump, pages_per_stream=5) == 71
    index = index_for(dump)
    assert index == tmp_path / "tiny-multistream-index.txt.bz2"
    # one valid multi-stream .bz2: both decoders read it whole, as the same XML as the single-stream dump
    assert bz2.decompress(dump.read_bytes()) == _xml()
    indexed_bzip2 = pytest.importorskip("indexed_bzip2")
    with indexed_bzip2.open(str(dump)) as f:
        assert f.read() == _xml()
    lines = bz2.decompress(index.read_bytes()).decode("utf-8").splitlines()
    offsets = sorted({int(l.split(":", 1)[0]) for l in lines})
    assert len(lines) == 71 and len(offsets) == 15
    raw = dump.read_bytes()
    for a, b in zip(offsets, offsets[1:] + [len(raw)]):  # each offset starts a stream of whole pages
        text = bz2.BZ2Decompressor().decompress(raw[a:b])
        assert text.lstrip().startswith(b"<page>")
    assert lines[0].split(":", 1)[1] == "85:노무현"
    # the header stream: <mediawiki> and <siteinfo>, no page; the trailer closes the document
    assert b"<siteinfo>" in bz2.decompress(raw[:offsets[0]]) and b"<page>" not in bz2.decompress(raw[:offsets[0]])
    assert not index_for(TINY)  # a single-stream dump has none


@pytest.mark.parametrize("n", [2, 3, 4, 13, 50])
def test_stream_shards_read_their_streams_only_and_merge_identically(short, reference, tmp_path, n):
    for i in range(n):
        extract(CFG, short, tmp_path, shard=i, num_shards=n)
    stats = [read_manifest(tmp_path / f"extract-{i:05d}-of-{n:05d}")["stats"] for i in range(n)]
    assert {s["shard_by"] for s in stats} == {"streams"}
    # every page read once, by one shard; the file decoded once, plus a copy of the header stream per extra shard
    # (665 bytes: 3 % of this 23 KB dump, ~1e-6 of a real one)
    assert sum(s["pages_read"] for s in stats) == 32
    size, header = short.stat().st_size, int(_index_lines(short)[0].split(":", 1)[0])
    assert sum(s["compressed_bytes_read"] for s in stats) == size + (n - 1) * header
    assert n > 2 or sum(s["compressed_bytes_read"] for s in stats) <= 1.05 * size
    if n > 11:  # more shards than streams: some get only the header (50: the last one too), and write no documents
        assert min(s["pages_read"] for s in stats) == 0 and stats[-1]["pages_read"] == (0 if n == 50 else 2)
    assert (clean(CFG, tmp_path, num_shards=n) / "docs.jsonl").read_bytes() == \
        (reference / "clean" / "docs.jsonl").read_bytes()


def test_one_process_decodes_the_whole_file(reference, short):
    st = read_manifest(reference / "extract")["stats"]
    assert st["compressed_bytes_read"] == short.stat().st_size and st["shard_by"] is None


def test_sentence_shards_read_byte_ranges_and_split_identically(short, reference, tmp_path):
    out = tmp_path / "c"
    shutil.copytree(reference / "clean", out / "clean")
    for i in range(3):
        d = sentences(CFG, out, shard=i, num_shards=3)
        assert read_manifest(d)["config"]["shard_by"] == "bytes"
    got = split(CFG, out, num_shards=3)
    for name in ("train.txt", "valid.txt", "test.txt", "hf/train.parquet"):
        want = (reference / "split" / name).read_bytes()
        assert (got / name).read_bytes() == want and len(want) > 100, name
    docs = [json.loads(l) for i in range(3) for l in (out / f"sentences-{i:05d}-of-00003" / "sentences.jsonl")
            .read_text(encoding="utf-8").splitlines()]
    assert len(docs) == read_manifest(reference / "clean")["stats"]["documents"]
    # idx: each document's byte offset in clean/docs.jsonl, rising across the shards
    raw = (out / "clean" / "docs.jsonl").read_bytes()
    starts = [0] + [k + 1 for k, c in enumerate(raw) if c == 0x0A][:-1]
    assert [d["idx"] for d in docs] == starts


def test_jsonl_byte_ranges_cover_every_line_once(tmp_path):
    lines = [json.dumps({"k": k, "t": "가" * (k * 7 % 23)}, ensure_ascii=False) + "\n" for k in range(40)]
    f = tmp_path / "docs.jsonl"
    f.write_text("".join(lines), encoding="utf-8")
    offsets = [sum(len(l.encode()) for l in lines[:k]) for k in range(40)]
    assert [(i, r["k"]) for i, r in _read_jsonl_shard(f, 0, 1)] == list(enumerate(range(40)))
    for n in (2, 3, 7, 40, 97):
        got = [(pos, r["k"]) for s in range(n) for pos, r in _read_jsonl_shard(f, s, n)]
        assert got == list(zip(offsets, range(40))), n


def test_sharded_dump_without_index_reads_everything_and_warns(short, reference, tmp_path, caplog):
    plain, out = tmp_path / "in" / short.name, tmp_path / "out"
    plain.parent.mkdir()
    shutil.copy(short, plain)  # no index next to it
    with caplog.at_level(logging.WARNING, logger="koroberta.corpus"):
        for i in range(2):
            extract(CFG, plain, out, shard=i, num_shards=2)
    assert "no stream index next to it (short-multistream-index.txt.bz2): each of the 2 shards decodes the whole " \
           "dump" in caplog.text and "--multistream" in caplog.text
    stats = [read_manifest(out / f"extract-{i:05d}-of-00002")["stats"] for i in range(2)]
    assert [(s["shard_by"], s["pages_read"], s["compressed_bytes_read"]) for s in stats] == \
        [("ord", 32, short.stat().st_size)] * 2
    assert (clean(CFG, out, num_shards=2) / "docs.jsonl").read_bytes() == \
        (reference / "clean" / "docs.jsonl").read_bytes()

    # the index arrives: the shards are redone by streams, not taken for complete; a mix is refused by the merge
    shutil.copy(index_for(short), plain.parent)
    first = extract(CFG, plain, out, shard=0, num_shards=2)
    assert read_manifest(first)["stats"]["shard_by"] == "streams"
    with pytest.raises(InputError, match=r"extract shards 0 and 1 were cut differently \(shard_by streams and ord"):
        clean(CFG, out, num_shards=2, force=True)


def test_a_dump_among_several_sources_is_read_by_streams(short, tmp_path):
    """`sources:` in a config: the array's extract task i reads shard i of every source -- by streams for the
    multistream dump, by ordinal for the text file -- and the merge is the one-process merge."""
    yaml = pytest.importorskip("yaml")
    (tmp_path / "notes.txt").write_text("".join(f"노트 {k}번째 줄은 충분히 길게 쓴 한 문서의 문장이다.\n"
                                                 for k in range(7)), encoding="utf-8")
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump({
        "workdir": str(tmp_path / "run"),
        "sources": [{"name": "kowiki", "path": str(short)},
                    {"name": "notes", "path": str(tmp_path / "notes.txt"), "documents": "line"}],
        "corpus": {"keep_intermediates": True}}, allow_unicode=True), encoding="utf-8")
    for n in (1, 3):
        out = tmp_path / f"out{n}"
        for i in range(n):
            assert main(["corpus", "extract", str(out), "--config", str(cfg), "--shard", str(i), "--num-shards",
                         str(n), "--workers", "1"]) == 0
        assert main(["corpus", "clean", str(out), "--config", str(cfg), "--num-shards", str(n)]) == 0
    kinds = {d.name: read_manifest(d)["stats"]["shard_by"] for d in (tmp_path / "out3").glob("extract-*")}
    assert kinds == {**{f"extract-kowiki-{i:05d}-of-00003": "streams" for i in range(3)},
                     **{f"extract-notes-{i:05d}-of-00003": "ord" for i in range(3)}}
    for name in ("docs.jsonl", "excluded.jsonl"):
        one, three = ((tmp_path / f"out{n}" / "clean" / name).read_bytes() for n in (1, 3))
        assert one == three and (name != "docs.jsonl" or one.count(b'"source": "kowiki"') > 10), name


def _index_lines(short: Path) -> list[str]:
    return bz2.decompress(index_for(short).read_bytes()).decode("utf-8").splitlines(keepends=True)


def _with_index(short: Path, tmp_path: Path, lines: list[str]) -> Path:
    d = tmp_path / "bad"
    d.mkdir(exist_ok=True)
    dump = d / short.name
    shutil.copy(short, dump)
    (d / index_for(short).name).write_bytes(bz2.compress("".join(lines).encode("utf-8")))
    return dump


def _read_all_shards(dump: Path, n: int = 3) -> None:
    for i in range(n):
        list(iter_dump(dump, ReadStats(), streams=shard_range(index_for(dump), dump, i, n)))


def test_index_that_does_not_fit_is_a_one_line_error(short, tmp_path, capsys):
    lines = _index_lines(short)
    first_off = int(lines[0].split(":", 1)[0])
    cases = []
    swapped = list(lines)
    swapped[4], swapped[5] = swapped[5], swapped[4]  # two page ids in the wrong order
    cases.append((swapped, r"page \d+ of bytes [\d,]+-[\d,]+ has id \d+ in the dump, the index lists page id \d+ "
                           r"\(stream at byte [\d,]+\)"))
    cases.append((lines[:-1], r"has id \d+ in the dump, the index lists only [\d,]+ pages"))
    cases.append((lines + [lines[-1]], r"the index lists [\d,]+ pages in bytes [\d,]+-[\d,]+, the dump holds "
                                       r"[\d,]+ there"))
    other = list(lines)
    other[7] = other[7].split(":", 1)[0] + ":999999:다른 덤프의 문서\n"  # a page of another dump
    cases.append((other, r"has id \d+ in the dump, the index lists page id 999999"))
    shifted = [f"{int(l.split(':', 1)[0]) + 7}:{l.split(':', 1)[1]}" for l in lines]  # offsets that start no stream
    cases.append((shifted, r"do not decode as bz2 streams"))
    cases.append((lines[:3] + ["garbage without colons\n"] + lines[3:], r"line 4 is not OFFSET:PAGE_ID:TITLE"))
    cases.append(([":1:no offset\n"] + lines, r"line 1 is not OFFSET:PAGE_ID:TITLE"))
    cases.append((lines[:4] + [f"{first_off}:1:x\n"] + lines[4:], r"line 5: offset [\d,]+ comes after"))
    cases.append((lines + [f"{short.stat().st_size + 10}:5:x\n"], r"lies past the end of the dump"))
    for bad, pattern in cases:
        dump = _with_index(short, tmp_path, bad)
        with pytest.raises(InputError, match=pattern) as e:
            _read_all_shards(dump)
        msg = str(e.value)
        assert "\n" not in msg and msg.startswith(f"{dump.parent / index_for(short).name}: stream index")
        assert "fix: re-download the dump and its index together (`koroberta corpus download --multistream`)" in msg
    # through the command: one line, no traceback, nothing left behind
    dump = _with_index(short, tmp_path, swapped)
    out = tmp_path / "out"
    assert main(["corpus", "extract", str(dump), str(out), "--shard", "0", "--num-shards", "2"]) == 2
    err = capsys.readouterr().err
    errors = [l for l in err.splitlines() if l.startswith("error: ")]  # after the log line naming its streams
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0] and "Traceback" not in err
    assert "stream index does not fit short-multistream.xml.bz2" in errors[0]
    assert not list(out.glob("extract-*/_COMPLETE"))


@pytest.mark.parametrize("stdlib", [False, True], ids=["indexed_bzip2", "stdlib-bz2"])
def test_both_decoders_read_stream_ranges(short, tmp_path, monkeypatch, stdlib):
    from koroberta.corpus import sources

    monkeypatch.setattr(sources, "_FORCE_STDLIB_BZ2", stdlib)
    whole = [(p.ord, p.id, p.title, p.text) for p in iter_dump(short, ReadStats())]
    for threads in (1, 2):
        got, read = [], 0
        for i in range(3):
            st = ReadStats()
            rng = shard_range(index_for(short), short, i, 3)
            got += [(p.ord, p.id, p.title, p.text) for p in iter_dump(short, st, decompress_threads=threads, streams=rng)]
            read += st.compressed_bytes
        assert got == whole and read == short.stat().st_size + 2 * int(_index_lines(short)[0].split(":", 1)[0])
    lines = _index_lines(short)
    dump = _with_index(short, tmp_path, [f"{int(l.split(':', 1)[0]) + 7}:{l.split(':', 1)[1]}" for l in lines])
    with pytest.raises(InputError, match=r"stream index does not fit .* do not decode as bz2 streams"):
        _read_all_shards(dump)


def test_a_source_that_is_no_dump_is_not_read_by_streams(tmp_path):
    src = tmp_path / "wiki.xml.bz2"  # WikiExtractor output under a dump's name, an "index" next to it
    src.write_bytes(bz2.compress('<doc id="1" title="가">\n가\n첫 문단이다.\n</doc>\n'.encode("utf-8")))
    (tmp_path / "wiki-index.txt.bz2").write_bytes(bz2.compress(b"0:1:x\n"))
    with pytest.raises(InputError, match=r"a stream index lies next to it \(wiki-index.txt.bz2\), but it is "
                                         r"WikiExtractor output, not a MediaWiki dump.*fix: move"):
        extract(CFG, src, tmp_path / "out", shard=0, num_shards=2)


# -- download --multistream -----------------------------------------------------------------------------------------
def test_download_multistream_fetches_and_verifies_dump_and_index(short, tmp_path, monkeypatch, capsys):
    from test_download import FAST, WIKI, DONE, DumpServer, layout

    from koroberta.corpus.download import download_dump, sidecar_path
    from koroberta.errors import DownloadError

    for k in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    body, index = short.read_bytes(), index_for(short).read_bytes()
    files = layout()
    names = {"dump": f"{WIKI}-{DONE}-pages-articles-multistream.xml.bz2",
             "index": f"{WIKI}-{DONE}-pages-articles-multistream-index.txt.bz2"}
    status_path = f"/{WIKI}/{DONE}/dumpstatus.json"
    doc = json.loads(files[status_path])
    doc["jobs"]["articlesmultistreamdump"] = {"status": "done", "files": {
        names[k]: {"size": len(b), "sha1": hashlib.sha1(b).hexdigest(), "url": f"/{WIKI}/{DONE}/{names[k]}"}
        for k, b in (("dump", body), ("index", index))}}
    files[status_path] = json.dumps(doc).encode()
    files[f"/{WIKI}/{DONE}/{names['dump']}"] = body
    files[f"/{WIKI}/{DONE}/{names['index']}"] = index
    server = DumpServer(files)
    try:
        server.cut_once[f"/{WIKI}/{DONE}/{names['dump']}"] = len(body) // 2  # resumed like the plain dump
        # the command a user types (+ the local server): it prints the dump's path, for `source:` / SOURCE=
        assert main(["corpus", "download", str(tmp_path), "--date", "latest", "--multistream", "--base-url",
                     server.url, "--checksum-base-url", server.url]) == 0
        got = tmp_path / names["dump"]
        assert capsys.readouterr().out.strip().splitlines()[-1] == str(got) and got.read_bytes() == body
        assert index_for(got) == tmp_path / names["index"] and index_for(got).read_bytes() == index
        for name in names.values():
            rec = json.loads(sidecar_path(tmp_path / name).read_text())
            assert rec["sha1_verified"] and rec["date"] == DONE and rec["checksum_source"].endswith("dumpstatus.json")
        assert [r for r, _ in server.hits(f"/{WIKI}/{DONE}/{names['dump']}")] == [None, f"bytes={len(body) // 2}-"]
        # a dated rerun needs no network for either file
        n = len(server.log)
        assert download_dump(WIKI, DONE, tmp_path, base_url=server.url, multistream=True, **FAST) == got
        assert len(server.log) == n
        # a corrupted index is refused like a corrupted dump, and the dump already fetched is kept
        bad = bytearray(index)
        bad[len(bad) // 2] ^= 0xFF
        server.files[f"/{WIKI}/{DONE}/{names['index']}"] = bytes(bad)
        (tmp_path / names["index"]).unlink()
        sidecar_path(tmp_path / names["index"]).unlink()
        with pytest.raises(DownloadError, match=rf"{names['index']}: SHA-1 .* does not match the published"):
            download_dump(WIKI, DONE, tmp_path, base_url=server.url, checksum_base_url=server.url, multistream=True,
                          **FAST)
        assert got.is_file() and not (tmp_path / names["index"]).exists()
    finally:
        server.stop()
