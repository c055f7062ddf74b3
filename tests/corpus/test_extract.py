import bz2
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from koroberta.artifacts import is_complete, read_manifest
from koroberta.corpus.config import CorpusConfig
from koroberta.corpus.steps import clean, extract
from koroberta.errors import InputError, OutputError

RESIDUE = ["{{", "}}", "[[", "]]", "<ref", "{|", "|}", "파일:", "분류:"]


def docs_of(d: Path) -> list[dict]:
    return [json.loads(l) for l in (d / "docs.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def tiny_extract(tmp_path_factory, tiny_dump):
    out = tmp_path_factory.mktemp("ext")
    return extract(CorpusConfig(), tiny_dump, out), out


def test_extract_matches_ground_truth(tiny_extract, tiny_truth):
    d, _ = tiny_extract
    docs = {r["id"]: r for r in docs_of(d)}
    want = {str(r["id"]) for r in tiny_truth if r["extract"]}
    assert set(docs) == want  # every article, nothing else (redirects, other namespaces, empty pages)
    titles = {r["title"] for r in docs.values()}
    assert {"틀라토아니", "파일럿 (드라마)"} <= titles
    ws = lambda s: re.sub(r"\s+", " ", s).strip()
    total = found = 0
    for r in tiny_truth:
        if r["extract"]:
            text = ws(docs[str(r["id"])]["text"])
            for m in r["must_contain"]:
                total += 1
                found += ws(m) in text
    assert total > 100 and found / total >= 0.97
    alltext = "\n".join(r["text"] for r in docs.values())
    for tok in RESIDUE:
        assert tok not in alltext, tok
    st = read_manifest(d)["stats"]
    assert st["documents"] == len(want) and st["dropped"]["redirect"] == 10 and st["dropped"]["namespace"] == 9


def test_malformed_pages_keep_their_tail(tiny_extract, tiny_truth):
    d, _ = tiny_extract
    docs = {r["id"]: r for r in docs_of(d)}
    for r in tiny_truth:
        if r.get("malformed") and r["extract"]:
            last = r["must_contain"][-1] if r["must_contain"] else None
            assert len(docs[str(r["id"])]["text"]) > 500
            if last:
                assert " ".join(last.split()) in " ".join(docs[str(r["id"])]["text"].split())


def test_skip_when_complete_and_shards_merge_identically(tiny_extract, tiny_dump, tmp_path):
    d, out = tiny_extract
    cfg = CorpusConfig()
    mtime = (d / "docs.jsonl").stat().st_mtime_ns
    assert extract(cfg, tiny_dump, out) == d and (d / "docs.jsonl").stat().st_mtime_ns == mtime
    one = clean(cfg, out)
    for i in range(3):
        extract(cfg, tiny_dump, tmp_path, shard=i, num_shards=3)
    three = clean(cfg, tmp_path, num_shards=3)
    assert (one / "docs.jsonl").read_bytes() == (three / "docs.jsonl").read_bytes()
    assert (one / "manifest.json").read_text().count('"documents"') == 1
    # every file the step writes is read downstream or is its manifest (no 1 GB side copy of the text)
    assert sorted(p.name for p in one.iterdir()) == ["_COMPLETE", "docs.jsonl", "manifest.json", "timing.json"]


def test_dedup_and_min_chars(tmp_path):
    src = tmp_path / "docs.txt"
    para = "가나다라마바사 아자차카타파하. " * 10
    src.write_text(f"{para}\n\n짧다.\n\n{para}\n\n다른 {para}\n", encoding="utf-8")
    cfg = CorpusConfig(min_chars=50)
    extract(cfg, src, tmp_path / "o")
    c = clean(cfg, tmp_path / "o")
    st = read_manifest(c)["stats"]
    assert st["documents"] == 2 and st["dropped"] == {"duplicate": 1, "too_short": 1}
    assert read_manifest(clean(cfg, tmp_path / "o"))["stats"] == st  # rerun: skipped, same result


def test_wikiextractor_and_plain_text_with_bad_utf8(tmp_path):
    we = tmp_path / "AA"
    we.mkdir()
    body = "첫 문단은 충분히 길어야 한다. 그래서 여러 단어를 넣는다. " * 4
    (we / "wiki_00").write_bytes(
        f'<doc id="7" url="https://ko.wikipedia.org/wiki?curid=7" title="가나">\n가나\n\n{body}\n'.encode()
        + b"\xff\xfe bad bytes here\n</doc>\n"
        + f'<doc id="9" url="u" title="다라">\n다라\n\n{body}둘째\n</doc>\n'.encode())
    d = extract(CorpusConfig(min_chars=10), we, tmp_path / "o")
    docs = docs_of(d)
    assert [r["id"] for r in docs] == ["7", "9"] and docs[0]["title"] == "가나"
    assert "\ufffd" in docs[0]["text"] and not docs[0]["text"].startswith("가나\n")
    assert read_manifest(d)["stats"]["invalid_utf8_replaced"] == 2
    txt = tmp_path / "plain.txt"
    txt.write_bytes(f"{body}\n\n{body}\xa0끝\n".encode() + b"\xc3\x28 x\n")
    d2 = extract(CorpusConfig(min_chars=10), txt, tmp_path / "p")
    assert len(docs_of(d2)) == 2 and read_manifest(d2)["stats"]["invalid_utf8_replaced"] == 1


def _no_complete(out: Path):
    return not any((p / "_COMPLETE").exists() for p in out.glob("*")) if out.exists() else True


@pytest.fixture(params=["indexed_bzip2", "stdlib"])
def bz2_decoder(request, monkeypatch):
    """Run a test with each bz2 decoder: indexed_bzip2 (the default when installed) and the stdlib fallback."""
    from koroberta.corpus import sources

    if request.param == "indexed_bzip2":
        pytest.importorskip("indexed_bzip2")
    monkeypatch.setattr(sources, "_FORCE_STDLIB_BZ2", request.param == "stdlib")
    return request.param


def test_truncated_bz2(tmp_path, tiny_dump, bz2_decoder):
    bad = tmp_path / "kowiki-cut.xml.bz2"
    bad.write_bytes(tiny_dump.read_bytes()[: tiny_dump.stat().st_size // 2])  # cut inside the first 900k block
    with pytest.raises(InputError, match=r"truncated.*MB.*pages read.*re-download"):
        extract(CorpusConfig(), bad, tmp_path / "o")
    assert _no_complete(tmp_path / "o")
    small_blocks = bz2.compress(bz2.decompress(tiny_dump.read_bytes()), compresslevel=1)  # 100k blocks
    bad.write_bytes(small_blocks[: len(small_blocks) // 2])  # the header decodes, then the stream stops
    with pytest.raises(InputError, match=r"truncated.*after 0\.\d MB of 0\.\d MB \(\d+ pages read: "
                                         r"[^)]*(end-of-stream|before the end)") as e:
        extract(CorpusConfig(), bad, tmp_path / "o")
    assert "std::exception" not in str(e.value)  # indexed_bzip2's own text says nothing; ours says what happened
    assert _no_complete(tmp_path / "o")
    garbage = tmp_path / "kowiki-garbage.xml.bz2"
    garbage.write_bytes(tiny_dump.read_bytes()[:4096] + bytes(range(256)) * 64)
    with pytest.raises(InputError, match=r"(truncated|corrupt).*re-download"):
        extract(CorpusConfig(), garbage, tmp_path / "o")
    assert _no_complete(tmp_path / "o")


def test_bz2_decoders_and_threads_agree(tmp_path, tiny_dump, tiny_extract, bz2_decoder):
    """Same docs.jsonl from either decoder, with 1 or 2 decode threads, and from a multistream .bz2."""
    want = (tiny_extract[0] / "docs.jsonl").read_bytes()
    xml = bz2.decompress(tiny_dump.read_bytes())
    multi = tmp_path / "kowiki-multistream.xml.bz2"
    multi.write_bytes(bz2.compress(xml[: len(xml) // 3]) + bz2.compress(xml[len(xml) // 3:]))
    for src, workers in ((tiny_dump, 1), (tiny_dump, 2), (multi, 1)):
        d = extract(CorpusConfig(), src, tmp_path / f"o-{src.stem}-{workers}", workers=workers)
        assert (d / "docs.jsonl").read_bytes() == want


def test_reader_follows_the_export_schema(tmp_path):
    """Page id (not revision/contributor id), redirect flag, last revision's text, entities, CRLF, empty text."""
    from koroberta.corpus.sources import ReadStats, iter_dump

    xml = ('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" version="0.11">\r\n<siteinfo><dbname>kowiki'
           '</dbname></siteinfo>\n'
           '<page><title>A &amp; B</title><ns>0</ns><id> 7 </id><revision><id>70</id><contributor><id>9</id>'
           '</contributor><text bytes="3">첫 판</text></revision><revision><id>71</id>'
           '<text xml:space="preserve">둘째 &lt;ref&gt;판&lt;/ref&gt; &amp;nbsp; &#xAC00;\r\n끝</text><sha1>x</sha1>'
           '</revision></page>\n'
           '<page><title>R</title><ns>0</ns><id>8</id><redirect title="A" /><revision><id>80</id>'
           '<text bytes="0" /></revision></page>\n'
           '<page><title>틀:X</title><ns>10</ns><id></id><revision><text>{{x}}</text></revision></page>'
           '</mediawiki>')
    path = tmp_path / "kowiki.xml"
    path.write_text(xml, encoding="utf-8")
    stats = ReadStats()
    pages = list(iter_dump(path, stats))
    assert [(p.ord, p.id, p.title, p.ns, p.redirect) for p in pages] == [
        (0, "7", "A & B", 0, False), (1, "8", "R", 0, True), (2, "ord2", "틀:X", 10, False)]
    assert pages[0].text == "둘째 <ref>판</ref> &nbsp; 가\n끝"
    assert pages[1].text == "" and pages[2].text == "{{x}}"
    assert stats.pages == 3 and stats.dbname == "kowiki"
    cut = tmp_path / "kowiki-cut.xml"
    cut.write_text(xml[: xml.index("<page><title>R")], encoding="utf-8")
    with pytest.raises(InputError, match=r"XML ends early.*1 pages read"):
        list(iter_dump(cut, ReadStats()))
    broken = tmp_path / "kowiki-broken.xml"
    broken.write_text(xml.replace("</title><ns>0</ns><id>8", "</titel><ns>0</ns><id>8"), encoding="utf-8")
    with pytest.raises(InputError, match=r"not well-formed XML.*mismatched tag"):
        list(iter_dump(broken, ReadStats()))


def test_doc_json_is_json_dumps():
    from koroberta.text import normalize_form
    from koroberta.corpus.steps import doc_json

    rng = random.Random(5)
    pool = ['"', "\\", "\n", "\t", "\x00", "\x1f", "\x7f", "\u2028", "\u00a0", "가", "a", " ", "\u200b", "'", "/"]
    for _ in range(2000):
        raw = ["".join(rng.choice(pool) for _ in range(rng.randint(0, 12))) for _ in range(rng.randint(1, 4))]
        text = "\n".join(x for x in (normalize_form(r, "NFC") for r in raw) if x)  # what cleaning can emit
        title = "".join(rng.choice(pool) for _ in range(rng.randint(0, 6)))  # titles are not cleaned
        want = json.dumps({"ord": 12, "id": "3", "title": title, "text": text}, ensure_ascii=False) + "\n"
        assert doc_json(12, "3", title, text) == want


def test_not_xml_empty_and_other_wiki(tmp_path, tiny_dump):
    html = tmp_path / "kowiki.xml"
    html.write_text("<html><body>404</body></html>", encoding="utf-8")
    with pytest.raises(InputError, match="not a MediaWiki"):
        extract(CorpusConfig(), html, tmp_path / "o")
    junk = tmp_path / "kowiki.xml.bz2"
    junk.write_bytes(bz2.compress(b"this is not xml at all"))
    with pytest.raises(InputError, match="not XML"):
        extract(CorpusConfig(), junk, tmp_path / "o")
    empty = tmp_path / "empty.xml.bz2"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        extract(CorpusConfig(), empty, tmp_path / "o")
    nopages = tmp_path / "nopages.xml"
    nopages.write_text('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/"><siteinfo><dbname>kowiki'
                       '</dbname></siteinfo></mediawiki>', encoding="utf-8")
    with pytest.raises(InputError, match="no <page>"):
        extract(CorpusConfig(), nopages, tmp_path / "o")
    en = tmp_path / "enwiki.xml.bz2"
    en.write_bytes(bz2.compress(bz2.decompress(tiny_dump.read_bytes()).replace(b"<dbname>kowiki<", b"<dbname>enwiki<")))
    with pytest.raises(InputError, match="enwiki.*--dbname"):
        extract(CorpusConfig(), en, tmp_path / "o")
    assert _no_complete(tmp_path / "o")
    d = extract(CorpusConfig(dbname=""), en, tmp_path / "o")  # explicitly accepted
    assert read_manifest(d)["stats"]["dbname"] == "enwiki"


def test_foreign_file_in_output_dir(tmp_path, tiny_dump):
    from koroberta.corpus.build import build_corpus

    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="did not write"):
        build_corpus(CorpusConfig(), tiny_dump, tmp_path / "o")
    (tmp_path / "o2" / "extract").mkdir(parents=True)
    (tmp_path / "o2" / "extract" / "x.bin").write_text("mine")
    with pytest.raises(OutputError, match="did not write"):
        extract(CorpusConfig(), tiny_dump, tmp_path / "o2")
    assert (tmp_path / "o2" / "extract" / "x.bin").exists()
    # a SLURM array: one shard's directory holding a foreign file fails that shard only, not its siblings
    (tmp_path / "o3" / "extract-00001-of-00002").mkdir(parents=True)
    (tmp_path / "o3" / "extract-00001-of-00002" / "notes.txt").write_text("mine")
    assert (extract(CorpusConfig(), tiny_dump, tmp_path / "o3", shard=0, num_shards=2) / "_COMPLETE").is_file()
    with pytest.raises(OutputError, match="extract-00001-of-00002: output directory holds files"):
        extract(CorpusConfig(), tiny_dump, tmp_path / "o3", shard=1, num_shards=2)


def test_sigkill_midway_then_rerun_is_byte_identical(tmp_path, tiny_dump):
    big = tmp_path / "big.xml"
    # a slower input so the kill lands mid-way: the tiny dump's pages repeated 20 times
    raw = bz2.decompress(tiny_dump.read_bytes()).decode("utf-8")
    head, rest = raw.split("<page>", 1)
    pages, tail = ("<page>" + rest).rsplit("</page>", 1)
    big.write_text(head + (pages + "</page>\n") * 20 + tail, encoding="utf-8")
    ref = extract(CorpusConfig(), big, tmp_path / "ref")
    code = (f"from koroberta.corpus.steps import extract; from koroberta.corpus.config import CorpusConfig; "
            f"extract(CorpusConfig(), {str(big)!r}, {str(tmp_path / 'run')!r}, workers=2)")
    p = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and not list((tmp_path).glob(".extract.tmp-*")) and \
            not list((tmp_path / "run").glob(".extract.tmp-*")):
        time.sleep(0.05)
    time.sleep(0.3)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    run = tmp_path / "run"
    assert not is_complete(run / "extract", "corpus.extract", {}, {}) and not (run / "extract" / "_COMPLETE").exists()
    d = extract(CorpusConfig(), big, run, workers=2)
    assert not list(run.glob(".extract.tmp-*"))
    for name in ("docs.jsonl", "manifest.json", "_COMPLETE"):
        assert (d / name).read_bytes() == (ref / name).read_bytes()
