"""preprocess.shards: a sharded data-bin (shard0/ .. shard{N-1}/, one shared dict.txt, valid in shard0).

shards: 1 is today's layout byte for byte (same identity, same manifest); N > 1 puts every train document in exactly
one shard by a hash of its text -- the union of the shards' items is the unsharded train, whatever the worker count
-- and both methods write the same bytes per shard."""

from __future__ import annotations

import collections
import filecmp
from pathlib import Path

import numpy as np
import pytest

from koroberta.artifacts import read_manifest, sha256_json
from koroberta.databin import data_files, data_fingerprint, read_mmap
from koroberta.errors import InputError
from koroberta.preprocess.build import document_runs, preprocess
from koroberta.preprocess.config import PreprocessConfig


def _files(d: Path) -> dict[str, Path]:
    """Every output file by relative name, timing.json aside (wall-clock times)."""
    return {str(p.relative_to(d)): p for p in sorted(d.rglob("*")) if p.is_file() and p.name != "timing.json"}


def _same_tree(a: Path, b: Path) -> None:
    fa, fb = _files(a), _files(b)
    assert list(fa) == list(fb)
    for name in fa:
        assert filecmp.cmp(fa[name], fb[name], shallow=False), name


def _items(prefix: Path) -> list[tuple[int, ...]]:
    sizes, flat = read_mmap(prefix)
    ends = np.cumsum(sizes)
    return [tuple(flat[e - s:e].tolist()) for s, e in zip(sizes.tolist(), ends.tolist())]


def _documents(items: list[tuple[int, ...]]) -> list[tuple[tuple[int, ...], ...]]:
    """Runs of items that are more than the lone eos of a blank line (fairseq's complete_doc boundary)."""
    docs, cur = [], []
    for it in items:
        if len(it) > 1:
            cur.append(it)
        elif cur:
            docs.append(tuple(cur))
            cur = []
    return docs + ([tuple(cur)] if cur else [])


@pytest.fixture(scope="module")
def unsharded(tmp_path_factory, tiny_split, tiny_vocab) -> Path:
    return preprocess(PreprocessConfig(), tiny_split, tiny_vocab, tmp_path_factory.mktemp("one") / "db")


@pytest.fixture(scope="module")
def three(tmp_path_factory, tiny_split, tiny_vocab) -> Path:
    return preprocess(PreprocessConfig(shards=3), tiny_split, tiny_vocab, tmp_path_factory.mktemp("three") / "db",
                      workers=1)


def test_one_shard_is_todays_layout(unsharded, tiny_split, tiny_vocab, tmp_path):
    """shards: 1 leaves the identity without the field (the pinned preset hashes hold) and writes the same files
    and manifest as a config that never names it (tests/preprocess/test_preprocess_stage.py holds those bytes
    against fairseq-preprocess)."""
    assert "shards" not in PreprocessConfig(shards=1).identity()
    assert sha256_json(PreprocessConfig(shards=1).identity()) == sha256_json(
        PreprocessConfig.from_dict({"keep_encoded": False}).identity())
    assert PreprocessConfig(shards=2).identity()["shards"] == 2  # any other count is another data-bin
    one = preprocess(PreprocessConfig.from_dict({"shards": 1}), tiny_split, tiny_vocab, tmp_path / "db")
    _same_tree(unsharded, one)
    assert "shards" not in read_manifest(one)["stats"]
    assert [n for n in _files(one) if n.endswith((".bin", ".idx"))] == [
        "test.bin", "test.idx", "train.bin", "train.idx", "valid.bin", "valid.idx"]
    assert not any(p.name.startswith("shard") for p in one.iterdir())
    # a data-bin of a config without the field is complete for shards: 1 (skipped, not rebuilt)
    marker = (one / "_COMPLETE").stat().st_mtime_ns
    preprocess(PreprocessConfig(), tiny_split, tiny_vocab, one)
    assert (one / "_COMPLETE").stat().st_mtime_ns == marker


def test_three_shards_partition_the_train_documents(three, unsharded, tiny_split, tiny_vocab, tmp_path):
    names = ["shard0", "shard1", "shard2"]
    # layout: data files only inside the shards; valid/test only in shard0; the same dict.txt everywhere
    assert data_files(three) == sorted(["dict.txt", "shard0/valid.bin", "shard0/valid.idx", "shard0/test.bin",
                                        "shard0/test.idx"] + [f"{n}/{f}" for n in names
                                                              for f in ("dict.txt", "train.bin", "train.idx")])
    for n in names:
        assert (three / n / "dict.txt").read_bytes() == (tiny_vocab / "dict.txt").read_bytes()
    for split in ("valid", "test"):
        for ext in ("bin", "idx"):
            assert filecmp.cmp(three / "shard0" / f"{split}.{ext}", unsharded / f"{split}.{ext}", shallow=False)
    # the union of the shards' items is the unsharded train (as a multiset), every document in exactly one shard
    whole = _items(unsharded / "train")
    parts = [_items(three / n / "train") for n in names]
    assert collections.Counter(it for p in parts for it in p) == collections.Counter(whole)
    docs = [set(_documents(p)) for p in parts]
    assert all(docs) and sum(map(len, docs)) == len(set(_documents(whole))) == 70
    assert not (docs[0] & docs[1] or docs[0] & docs[2] or docs[1] & docs[2])
    # each shard's documents keep their order and their boundaries (a blank line's eos between any two)
    for p in parts:
        order = [d for d in _documents(whole) if d in set(_documents(p))]
        assert _documents(p) == order
    st = read_manifest(three)["stats"]
    assert st["shards"] == 3 and st["shard_documents"] == [len(d) for d in docs]
    assert st["shard_tokens"] == [sum(map(len, p)) for p in parts] and sum(st["shard_tokens"]) == st["tokens"]["train"]
    assert st["shard_lines"] == [len(p) for p in parts]
    assert st["tokens"] == read_manifest(unsharded)["stats"]["tokens"]
    assert set(st["max_id"]) == {"shard0/train", "shard1/train", "shard2/train", "shard0/valid", "shard0/test"}
    # the fingerprint training keys on covers every shard's files
    assert data_fingerprint(three) != data_fingerprint(unsharded)


def test_shards_do_not_depend_on_workers_and_match_fairseq_preprocess(three, tiny_split, tiny_vocab, tmp_path):
    two = preprocess(PreprocessConfig(shards=3), tiny_split, tiny_vocab, tmp_path / "w2", workers=2)
    _same_tree(three, two)
    # one fairseq-preprocess run writes all three shards (build.py); one worker: fairseq's pool costs seconds here
    ref = preprocess(PreprocessConfig(shards=3, method="fairseq"), tiny_split, tiny_vocab, tmp_path / "fq", workers=1)
    assert [n for n in _files(ref) if n != "manifest.json"] == [n for n in _files(three) if n != "manifest.json"]
    for name in _files(three):
        if name not in ("manifest.json", "_COMPLETE"):
            assert filecmp.cmp(three / name, ref / name, shallow=False), name
    a, b = read_manifest(three)["stats"], read_manifest(ref)["stats"]
    for k in ("tokens", "lines", "max_id", "shards", "shard_tokens", "shard_lines", "shard_documents"):
        assert a[k] == b[k], k


def test_document_runs_cover_every_line_and_follow_the_text(tmp_path):
    """Runs are whole documents with their trailing blank lines (leading blanks join the first); a document's shard
    depends on its text only, not on where it stands."""
    p = tmp_path / "t.txt"
    p.write_bytes(b"\n \nalpha\nbeta\n\n\ngamma\n\t\nalpha\nbeta")  # no newline at the end
    runs = list(document_runs(p, 5))
    assert [n for n, _ in runs] == [6, 2, 2] and sum(n for n, _ in runs) == 10
    assert runs[0][1] == runs[2][1]  # the same document text, with and without its final newline
    q = tmp_path / "q.txt"
    q.write_bytes(b"gamma\n\nalpha\nbeta\n")
    assert [s for _, s in document_runs(q, 5)] == [runs[1][1], runs[0][1]]


def test_a_shard_without_documents_is_refused(tiny_split, tiny_vocab, tmp_path):
    with pytest.raises(InputError, match="no train document") as e:
        preprocess(PreprocessConfig(shards=200), tiny_split, tiny_vocab, tmp_path / "db")
    assert "preprocess.shards" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "db").exists()


def test_learning_checks_unigram_counts_cover_every_shard(three, unsharded):
    """The learning check's baseline (token frequencies of the train split) is the same for both layouts."""
    from koroberta.eval.mlm import unigram_counts

    rows = len((unsharded / "dict.txt").read_text(encoding="utf-8").splitlines()) + 4
    assert unigram_counts(three, rows).tolist() == unigram_counts(unsharded, rows).tolist()
