import json
import subprocess
import sys
from pathlib import Path

import pytest

from koroberta.artifacts import read_manifest
from koroberta.corpus.build import build_corpus
from koroberta.corpus.config import CorpusConfig
from koroberta.corpus.steps import assign_split, clean, extract, sentences, split

CFG = CorpusConfig(valid_fraction=0.1, test_fraction=0.1, report=False)


@pytest.fixture(scope="module")
def small_dump(tmp_path_factory, tiny_dump):
    """The first 30 pages of the tiny dump (kss on all 50 articles costs ~25 s per run on 2 busy cores)."""
    import bz2

    raw = bz2.decompress(tiny_dump.read_bytes()).decode("utf-8")
    head, *pages = raw.split("  <page>")
    out = tmp_path_factory.mktemp("small") / "kowiki-small.xml.bz2"
    out.write_bytes(bz2.compress((head + "".join("  <page>" + p for p in pages[:30]).split("</mediawiki>")[0]
                                  + "</mediawiki>\n").encode("utf-8")))
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory, small_dump):
    out = tmp_path_factory.mktemp("corpus")
    return build_corpus(CFG.replace(report=True), small_dump, out), out


def test_split_files_format_and_stats(built, tiny_truth):
    d, _ = built
    st = read_manifest(d)["stats"]
    n_articles = read_manifest(d.parent / "clean")["stats"]["documents"]
    assert n_articles >= 15
    assert sum(st["documents"].values()) == n_articles
    for s in ("train", "valid", "test"):
        text = (d / f"{s}.txt").read_text(encoding="utf-8")
        if not text:
            continue
        assert not text.startswith("\n") and text.endswith("\n") and not text.endswith("\n\n")
        assert "\n\n\n" not in text
        docs = text[:-1].split("\n\n")
        assert len(docs) == st["documents"][s]
        lines = [l for doc in docs for l in doc.split("\n")]
        assert all(l.strip() == l and l for l in lines)
        assert len(lines) == st["sentences"][s]
        assert sum(len(l) for l in lines) == st["characters"][s]
    assert sum(st["dropped"].values()) >= 1  # first 30 pages hold namespace/empty drops
    assert (d / "report.md").is_file() and (d / "doc_chars.png").read_bytes()[:4] == b"\x89PNG"
    # sentence splitting happened (many more lines than paragraphs) and never merged documents
    assert st["sentences"]["train"] > 3 * st["documents"]["train"]


def test_rerun_skips_and_sharded_run_is_byte_identical(built, small_dump, tmp_path):
    d, out = built
    mt = (d / "train.txt").stat().st_mtime_ns
    assert build_corpus(CFG.replace(report=True), small_dump, out) == d
    assert (d / "train.txt").stat().st_mtime_ns == mt
    cfg = CFG.replace(report=True)
    for i in range(2):
        extract(cfg, small_dump, tmp_path, shard=i, num_shards=2)
    clean(cfg, tmp_path, num_shards=2)
    for i in range(3):
        sentences(cfg, tmp_path, shard=i, num_shards=3)
    d3 = split(cfg, tmp_path, num_shards=3)
    for name in ("train.txt", "valid.txt", "test.txt", "report.md", "doc_chars.png"):
        assert (d / name).read_bytes() == (d3 / name).read_bytes(), name
    assert read_manifest(d)["stats"] == read_manifest(d3)["stats"]


def test_assign_split_is_deterministic_and_proportional():
    ids = [str(i) for i in range(20000)]
    a = [assign_split(i, "s", 0.05, 0.05) for i in ids]
    assert a == [assign_split(i, "s", 0.05, 0.05) for i in ids]
    assert 800 < a.count("valid") < 1200 and 800 < a.count("test") < 1200
    assert a != [assign_split(i, "other", 0.05, 0.05) for i in ids]


def test_missing_shard_is_an_error(tmp_path, small_dump):
    from koroberta.errors import InputError

    extract(CFG, small_dump, tmp_path, shard=0, num_shards=2)
    with pytest.raises(InputError, match="shard 1"):
        clean(CFG, tmp_path, num_shards=2)


def test_split_lines_single_and_many_paragraphs():
    from koroberta.corpus.steps import split_lines

    assert split_lines(["첫 문장이다. 둘째 문장이다."], "punct") == ["첫 문장이다.", "둘째 문장이다."]
    assert split_lines(["가 문장이다. 나 문장이다.", "다 문장이다."], "punct") == ["가 문장이다.", "나 문장이다.",
                                                                                   "다 문장이다."]


def test_config_validation():
    from koroberta.errors import ConfigError

    with pytest.raises(ConfigError):
        CorpusConfig(valid_fraction=0.6, test_fraction=0.5)
    with pytest.raises(ConfigError):
        CorpusConfig(backend="nope")
    with pytest.raises(ConfigError):
        CorpusConfig.from_dict({"min_char": 3})


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "koroberta", "corpus", *args], capture_output=True, text=True)


def test_cli_helps_and_errors(tmp_path):
    for sub in ("", "download", "extract", "clean", "split", "build", "backends"):
        r = _cli(*([sub] if sub else []), "--help")
        assert r.returncode == 0 and "usage" in r.stdout, sub
    bad = tmp_path / "x.xml.bz2"
    bad.write_bytes(b"BZh9" + b"\0" * 50)
    r = _cli("extract", str(bad), str(tmp_path / "o"))
    assert r.returncode != 0 and r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1
    assert str(bad) in r.stderr and "fix:" in r.stderr
    assert not (tmp_path / "o" / "extract").exists()


def test_cli_extract_and_clean_text(tmp_path):
    src = tmp_path / "t.txt"
    src.write_text(("문장 하나이다. 문장 둘이다. " * 10 + "\n\n") * 3 + "다른 문서이다. " * 10 + "\n", encoding="utf-8")
    assert _cli("extract", str(src), str(tmp_path / "o"), "--min-chars", "10").returncode == 0
    r = _cli("clean", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    st = read_manifest(tmp_path / "o" / "clean")["stats"]
    assert st["documents"] == 2 and st["dropped"]["duplicate"] == 2
