"""A multi-source corpus split: one validation subset ``valid_<name>`` per source with valid documents (ids checked
against sentencepiece itself, and byte-identical to fairseq-preprocess), each source's share of the train tokens
(checked against a direct count), and a single-source split read exactly as before."""

from __future__ import annotations

import filecmp
import logging
from pathlib import Path

import numpy as np
import pytest

from koroberta.artifacts import StageOutput, read_manifest
from koroberta.databin import read_mmap
from koroberta.errors import InputError
from koroberta.layout import EOS, OFFSET, UNK
from koroberta.preprocess.build import binarize, preprocess
from koroberta.preprocess.config import PreprocessConfig
from koroberta.preprocess.per_source import document_tokens

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

SOURCES = ("kowiki", "news", "reviews")  # reviews gets no valid document


def _documents(lines: list[str]) -> list[list[str]]:
    docs, cur = [], []
    for line in lines:
        if line.strip():
            cur.append(line)
        elif cur:
            docs.append(cur)
            cur = []
    return docs + ([cur] if cur else [])


def _text(docs: list[list[str]]) -> str:
    """The corpus split's format: one line per sentence, a blank line between documents, a final newline."""
    return "\n\n".join("\n".join(d) for d in docs) + "\n" if docs else ""


def write_split(d: Path, train: list[tuple[str, list[str]]], valid: list[tuple[str, list[str]]],
                test: list[list[str]], *, names=SOURCES, manifest: bool = True, parquet: bool = True) -> Path:
    """A split directory as koroberta.corpus.steps.split writes it for several sources: the .txt files,
    valid_<name>.txt per source (possibly empty), hf/train.parquet with a source column, and its manifest."""

    def fill(root: Path) -> None:
        (root / "train.txt").write_text(_text([doc for _, doc in train]), encoding="utf-8")
        (root / "valid.txt").write_text(_text([doc for _, doc in valid]), encoding="utf-8")
        (root / "test.txt").write_text(_text(test), encoding="utf-8")
        for n in names:
            (root / f"valid_{n}.txt").write_text(_text([doc for s, doc in valid if s == n]), encoding="utf-8")
        if parquet:
            (root / "hf").mkdir()
            pq.write_table(pa.table({"id": [str(k) for k in range(len(train))], "sentences": [d for _, d in train],
                                     "source": [s for s, _ in train]}), root / "hf" / "train.parquet")

    if not manifest:
        d.mkdir()
        fill(d)
        return d
    with StageOutput(d, stage="corpus.split", config={}, inputs={}) as st:
        fill(st.tmp)
        st.stats["sources"] = {n: {"weight": 1.0} for n in names}
    return d


@pytest.fixture(scope="module")
def docs(kowiki_line_list) -> list[list[str]]:
    return _documents(kowiki_line_list)


@pytest.fixture(scope="module")
def parts(docs):
    """Train: sources in turn, every news document written twice (a weight of 2, in a second pass); valid: kowiki
    and news only; test: the rest."""
    train = [(SOURCES[k % 3], doc) for k, doc in enumerate(docs[:75])]
    train += [(s, doc) for s, doc in train if s == "news"]
    valid = [(SOURCES[k % 2], doc) for k, doc in enumerate(docs[75:92])]
    return train, valid, docs[92:]


@pytest.fixture(scope="module")
def split(tmp_path_factory, parts) -> Path:
    return write_split(tmp_path_factory.mktemp("multi") / "split", *parts)


@pytest.fixture(scope="module")
def fused(tmp_path_factory, split, kowiki_vocab) -> Path:
    return preprocess(PreprocessConfig(keep_encoded=True), split, kowiki_vocab,
                      tmp_path_factory.mktemp("pp") / "fused", workers=2)


def _fairseq_ids(sp, lines: list[str]) -> list[int]:
    """What fairseq-preprocess stores for these lines: spm id + OFFSET (<unk> -> UNK), then </s>, line by line."""
    out: list[int] = []
    for line in lines:
        out += [UNK if i == 0 else i + OFFSET for i in sp.encode(" ".join(line.split()))] + [EOS]
    return out


def test_each_source_with_valid_documents_gets_its_subset(fused, split, parts, kowiki_vocab):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(kowiki_vocab / "spm.model"))
    stats = read_manifest(fused)["stats"]
    assert stats["valid_subsets"] == ["valid", "valid_kowiki", "valid_news"]
    assert not list(fused.glob("valid_reviews.*")) and stats["sources"]["reviews"]["valid_subset"] is None
    _, valid, _ = parts
    for name in ("kowiki", "news"):
        lines = (split / f"valid_{name}.txt").read_text(encoding="utf-8").split("\n")[:-1]
        sizes, flat = read_mmap(fused / f"valid_{name}")
        assert flat.tolist() == _fairseq_ids(sp, lines) and len(sizes) == len(lines)
        src = stats["sources"][name]
        assert src["valid_subset"] == f"valid_{name}"
        assert src["valid"]["documents"] == sum(s == name for s, _ in valid) == len(document_tokens(sizes))
        assert src["valid"]["tokens"] == int(sizes.sum())
        assert stats["max_id"][f"valid_{name}"] == int(flat.max())
    # the subsets are valid's own documents: together their documents hold exactly valid's document tokens
    vsizes, _ = read_mmap(fused / "valid")
    both = sum(int(document_tokens(read_mmap(fused / f"valid_{n}")[0]).sum()) for n in ("kowiki", "news"))
    assert both == int(document_tokens(vsizes).sum())
    # the split-level counts are valid.txt's alone (a subset's lines are not counted twice)
    assert stats["tokens"]["valid"] == int(vsizes.sum()) and set(stats["tokens"]) == {"train", "valid", "test"}
    assert (fused / "valid_news.spm").is_file()  # keep_encoded keeps the subsets' piece text too


def test_train_token_shares_match_a_direct_count(fused, parts, kowiki_vocab):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(kowiki_vocab / "spm.model"))
    train, _, _ = parts
    want = {n: 0 for n in SOURCES}
    for s, doc in train:  # every sentence's pieces + its </s>; the blank separators belong to no document
        want[s] += len(_fairseq_ids(sp, doc))
    got = read_manifest(fused)["stats"]["sources"]
    assert {n: got[n]["train_tokens"] for n in SOURCES} == want
    total = sum(want.values())
    for n in SOURCES:
        assert got[n]["share"] == round(want[n] / total, 6)
    # the news documents are written twice: their share is about twice that of one copy
    assert got["news"]["train_tokens"] > got["kowiki"]["train_tokens"]


@pytest.mark.slow
def test_subsets_are_byte_identical_to_fairseq_preprocess(fused, split, kowiki_vocab, tmp_path):
    """fairseq-preprocess (2 workers, merging shards; the subsets ride on --validpref) makes the same subsets; with
    1 sentencepiece thread the fused writer makes the same bytes again."""
    ref = preprocess(PreprocessConfig(method="fairseq", keep_encoded=True), split, kowiki_vocab, tmp_path / "fairseq",
                     workers=2)
    one = preprocess(PreprocessConfig(), split, kowiki_vocab, tmp_path / "one", workers=1)
    names = sorted(p.name for p in fused.iterdir() if p.suffix in (".bin", ".idx", ".spm"))
    assert "valid_news.idx" in names and not list(ref.glob("valid1.*"))
    assert names == sorted(p.name for p in ref.iterdir() if p.suffix in (".bin", ".idx", ".spm"))
    for name in names:
        assert filecmp.cmp(fused / name, ref / name, shallow=False), name
        if not name.endswith(".spm"):
            assert filecmp.cmp(fused / name, one / name, shallow=False), name
    a, b = read_manifest(fused)["stats"], read_manifest(ref)["stats"]
    for k in ("max_id", "valid_subsets", "sources", "tokens"):
        assert a[k] == b[k], k


def test_binarize_takes_the_kept_subsets(fused, kowiki_vocab, tmp_path, monkeypatch):
    """`preprocess binarize` hands kept valid_<name>.spm files to fairseq-preprocess as subsets (fairseq itself is
    stood in for by the fused output here: the byte identity is the test above)."""
    import shutil

    import koroberta.preprocess.build as build

    calls = []

    def fake(srcdict, prefixes, destdir, workers, extra_valid=None):
        calls.append((sorted(prefixes), dict(extra_valid or {})))
        for name in [*prefixes, *(extra_valid or {})]:
            for ext in ("bin", "idx"):
                shutil.copy(fused / f"{name}.{ext}", destdir / f"{name}.{ext}")

    monkeypatch.setattr(build, "run_fairseq_preprocess", fake)
    out = binarize(fused, kowiki_vocab, tmp_path / "bz")
    assert calls == [(["test", "train", "valid"], {"valid_kowiki": fused / "valid_kowiki.spm",
                                                   "valid_news": fused / "valid_news.spm"})]
    stats = read_manifest(out)["stats"]
    assert stats["valid_subsets"] == ["valid", "valid_kowiki", "valid_news"]
    assert stats["max_id"] == read_manifest(fused)["stats"]["max_id"]


# -- small splits: the edges -----------------------------------------------------------------------------------------
SMALL_TRAIN = [("a", ["첫 문서의 첫 문장.", "둘째 문장."]), ("b", ["다른 출처."]), ("a", ["셋째 문서."])]
SMALL_VALID = [("a", ["검증 문서."]), ("b", ["검증 둘."])]


def test_single_source_split_reads_as_before(kowiki_vocab, tmp_path):
    """No sources in the split's manifest: valid_*.txt and hf/ are not inputs, and the manifest has no new key."""
    d = tmp_path / "split"
    with StageOutput(d, stage="corpus.split", config={}, inputs={}) as st:
        for s, docs in (("train", [x for _, x in SMALL_TRAIN]), ("valid", [["검증."]]), ("test", [["시험."]])):
            (st.tmp / f"{s}.txt").write_text(_text(docs), encoding="utf-8")
        (st.tmp / "hf").mkdir()
        pq.write_table(pa.table({"id": ["0"]}), st.tmp / "hf" / "train.parquet")
    m = read_manifest(preprocess(PreprocessConfig(), d, kowiki_vocab, tmp_path / "db"))
    assert set(m["inputs"]) == {"train", "valid", "test", "spm_model", "dict"}
    assert not {"sources", "valid_subsets"} & set(m["stats"])
    assert sorted(p.name for p in (tmp_path / "db").glob("valid*")) == ["valid.bin", "valid.idx"]


def test_split_made_elsewhere_without_parquet(kowiki_vocab, tmp_path, caplog):
    """No manifest: the sources are the valid_<name>.txt files present. No hf/train.parquet: no shares, a log line,
    no failure. A changed subset text reruns the stage (it is an input)."""
    d = write_split(tmp_path / "split", SMALL_TRAIN, SMALL_VALID, [["시험."]], names=("a", "b"), manifest=False,
                    parquet=False)
    with caplog.at_level(logging.INFO, logger="koroberta.preprocess"):
        out = preprocess(PreprocessConfig(), d, kowiki_vocab, tmp_path / "db")
    stats = read_manifest(out)["stats"]
    assert stats["valid_subsets"] == ["valid", "valid_a", "valid_b"]
    assert stats["sources"]["a"]["train_tokens"] is None and stats["sources"]["b"]["share"] is None
    assert "train token shares per source skipped: no hf/train.parquet" in caplog.text
    before = read_mmap(out / "valid_b")[1].tolist()
    (d / "valid_b.txt").write_text("바뀐 검증 문서입니다.\n", encoding="utf-8")
    preprocess(PreprocessConfig(), d, kowiki_vocab, out)
    assert read_mmap(out / "valid_b")[1].tolist() != before


def test_parquet_that_does_not_match_the_documents_skips_the_shares(kowiki_vocab, tmp_path, caplog):
    d = write_split(tmp_path / "split", SMALL_TRAIN, SMALL_VALID, [["시험."]], names=("a", "b"), manifest=False)
    pq.write_table(pa.table({"id": ["0", "1"], "source": ["a", "b"]}), d / "hf" / "train.parquet")  # 3 documents
    with caplog.at_level(logging.INFO, logger="koroberta.preprocess"):
        out = preprocess(PreprocessConfig(), d, kowiki_vocab, tmp_path / "db")
    assert read_manifest(out)["stats"]["sources"]["a"]["train_tokens"] is None
    assert "train.bin holds 3 documents but train.parquet 2 rows" in caplog.text


def test_source_without_valid_documents_is_said_so(kowiki_vocab, tmp_path, caplog, capsys):
    import argparse

    from koroberta.preprocess.cli import register

    d = write_split(tmp_path / "split", SMALL_TRAIN, SMALL_VALID[:1], [["시험."]], names=("a", "b"))
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["preprocess", "run", str(d), str(kowiki_vocab), str(tmp_path / "db"), "--no-progress"])
    with caplog.at_level(logging.INFO, logger="koroberta.preprocess"):
        assert args.func(args) == 0
    assert "source b has no valid documents: no valid_b subset" in caplog.text
    out = capsys.readouterr().out
    assert "validation subsets: valid, valid_a; b: no valid documents, no subset" in out
    assert "train tokens per source: a " in out and "%)" in out
    stats = read_manifest(tmp_path / "db")["stats"]
    assert stats["valid_subsets"] == ["valid", "valid_a"] and stats["sources"]["b"]["valid"] is None
    assert stats["sources"]["a"]["train_tokens"] + stats["sources"]["b"]["train_tokens"] == \
        stats["tokens"]["train"] - (len(SMALL_TRAIN) - 1)  # every token but the separators
    again = preprocess(PreprocessConfig(), d, kowiki_vocab, tmp_path / "again", workers=2)  # same inputs: same bytes
    assert (again / "manifest.json").read_bytes() == (tmp_path / "db" / "manifest.json").read_bytes()


def test_bad_per_source_inputs_are_refused(kowiki_vocab, tmp_path):
    d = write_split(tmp_path / "split", SMALL_TRAIN, SMALL_VALID, [["시험."]], names=("a", "b"), manifest=False)
    (d / "valid_a b.txt").write_text("x\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"source name 'a b'.*--valid-subset"):
        preprocess(PreprocessConfig(), d, kowiki_vocab, tmp_path / "db")
    listed = write_split(tmp_path / "listed", SMALL_TRAIN, SMALL_VALID, [["시험."]], names=("a", "b"))
    (listed / "valid_b.txt").unlink()  # (the manifest no longer matches: read as a split made elsewhere)
    m = tmp_path / "m"
    with StageOutput(m, stage="corpus.split", config={}, inputs={}) as st:
        for f in listed.iterdir():
            if f.is_file() and f.name not in ("manifest.json", "_COMPLETE"):
                (st.tmp / f.name).write_bytes(f.read_bytes())
        st.stats["sources"] = {"a": {}, "b": {}}
    with pytest.raises(InputError, match="valid_b.txt not found, though the split's manifest lists source 'b'"):
        preprocess(PreprocessConfig(), m, kowiki_vocab, tmp_path / "db")
    assert not (tmp_path / "db").exists()


def test_document_tokens():
    # [a a </s>] [</s>] [b </s>] [</s>] [c c c </s>] [d </s>]: documents "a a", "b", "c c c / d"
    assert document_tokens(np.array([3, 1, 2, 1, 4, 2])).tolist() == [3, 2, 6]
    assert document_tokens(np.array([], dtype=np.int32)).tolist() == []
