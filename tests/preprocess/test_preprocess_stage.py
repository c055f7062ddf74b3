"""koroberta preprocess: fused writer == fairseq-preprocess byte for byte; ids == spm ids + OFFSET; bad input."""

from __future__ import annotations

import argparse
import filecmp
from pathlib import Path

import numpy as np
import pytest

from koroberta.artifacts import read_manifest, sha256_file
from koroberta.databin import best_fitting_int_dtype, read_mmap, read_mmap_sizes, write_mmap_index
from koroberta.errors import InputError
from koroberta.layout import EOS, OFFSET, UNK
from koroberta.preprocess.build import binarize, encode_file, preprocess
from koroberta.preprocess.config import PreprocessConfig

DATA_FILES = ("dict.txt", "train.bin", "train.idx", "valid.bin", "valid.idx", "test.bin", "test.idx")
# lines that exercise every special case: unknown characters (-> <unk>), a literal <mask>, control characters and
# odd whitespace (repaired), whitespace-only and blank lines, a leading blank line (an empty first document)
EDGE = ["", "𓀀𓀁 상형문자 😀 and 漢字𠀀", "a literal <mask> and </s> in text", "tab\tand\x1cfile sep\u3000ideographic",
        "   ", "", "", "\u00a0nbsp\u2028line sep", "끝."]


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory, kowiki_line_list) -> Path:
    d = tmp_path_factory.mktemp("split")
    lines = kowiki_line_list
    (d / "train.txt").write_text("\n".join(lines[:2400]) + "\n", encoding="utf-8")
    (d / "valid.txt").write_text("\n".join(EDGE + lines[2400:2700]) + "\n", encoding="utf-8")
    (d / "test.txt").write_text("\n".join(lines[2700:] + EDGE), encoding="utf-8")  # no trailing newline
    return d


@pytest.fixture(scope="module")
def fused(tmp_path_factory, split_dir, kowiki_vocab) -> Path:
    return preprocess(PreprocessConfig(keep_encoded=True), split_dir, kowiki_vocab,
                      tmp_path_factory.mktemp("pp") / "fused", workers=2)


@pytest.mark.slow
def test_fused_is_byte_identical_to_fairseq_preprocess(fused, split_dir, kowiki_vocab, tmp_path):
    ref = preprocess(PreprocessConfig(method="fairseq", keep_encoded=True), split_dir, kowiki_vocab,
                     tmp_path / "fairseq", workers=2)  # fairseq-preprocess --workers 2: merges worker shards
    for name in DATA_FILES + ("train.spm", "valid.spm", "test.spm", "spm.model"):
        assert filecmp.cmp(fused / name, ref / name, shallow=False), name
    a, b = read_manifest(fused)["stats"], read_manifest(ref)["stats"]
    for k in ("tokens", "lines", "documents", "unk_rate", "spm_sha256", "dict_sha256", "dtype", "max_id"):
        assert a[k] == b[k], k
    # and with a single fairseq worker, from the piece text alone (the `binarize` subcommand)
    one = binarize(fused, kowiki_vocab, tmp_path / "bin1", workers=1)
    for name in DATA_FILES:
        assert filecmp.cmp(fused / name, one / name, shallow=False), name
    assert read_manifest(one)["stats"]["max_id"] == a["max_id"]  # what train preflight checks against the dict


def test_ids_are_spm_ids_plus_offset(fused, split_dir, kowiki_vocab):
    """fairseq's Dictionary.encode_line over our piece text == spm ids + OFFSET (<unk> -> UNK) == the .bin."""
    import sentencepiece as spm
    from fairseq.data import Dictionary

    sp = spm.SentencePieceProcessor(model_file=str(kowiki_vocab / "spm.model"))
    d = Dictionary.load(str(kowiki_vocab / "dict.txt"))
    for split in ("train", "valid", "test"):
        text = (split_dir / f"{split}.txt").read_text(encoding="utf-8").split("\n")
        if text[-1] == "":
            text.pop()
        pieces = (fused / f"{split}.spm").read_text(encoding="utf-8").split("\n")[:-1]
        sizes, flat = read_mmap(fused / split)
        assert len(text) == len(pieces) == len(sizes)
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        for k, (line, piece_line) in enumerate(zip(text, pieces)):
            ids = sp.encode(" ".join(line.split()))  # whitespace repair == what spm sees after nmt_nfkc anyway
            want = [UNK if i == 0 else i + OFFSET for i in ids] + [EOS]
            got = d.encode_line(piece_line, append_eos=True, add_if_not_exist=False).tolist()
            assert got == want, (split, k, line)
            assert flat[offsets[k]:offsets[k + 1]].tolist() == want
            if not line.strip():
                assert want == [EOS]  # blank line = document boundary for --sample-break-mode complete_doc
    stats = read_manifest(fused)["stats"]
    assert stats["dtype"] == "uint16" and flat.dtype == np.uint16
    assert stats["lines"]["valid"] == len(EDGE) + 300
    assert stats["splits"]["valid"]["unk"] > 0 and stats["unk_rate"] > 0
    assert stats["splits"]["valid"]["repairs"]["special_literals"] == 1
    valid = (split_dir / "valid.txt").read_text(encoding="utf-8").split("\n")
    dirty = sum(1 for l in valid if any(c != " " and (c.isspace() or ord(c) < 32 or 0x7f <= ord(c) <= 0x9f) for c in l))
    assert stats["splits"]["valid"]["repairs"]["control_or_whitespace"] == dirty >= 3  # real text has NBSPs
    mask_id = stats["vocab_size"] - 1
    assert all(int(read_mmap(fused / s)[1].max()) < mask_id for s in ("train", "valid", "test"))


def test_document_and_token_counts(fused, split_dir):
    stats = read_manifest(fused)["stats"]
    for split in ("train", "valid", "test"):
        text = (split_dir / f"{split}.txt").read_text(encoding="utf-8")
        lines = text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
        n_docs, in_doc = 0, False  # a document = a maximal run of non-blank lines
        for line in lines:
            n_docs += bool(line.strip()) and not in_doc
            in_doc = bool(line.strip())
        sizes, _ = read_mmap(fused / split)
        assert stats["tokens"][split] == int(sizes.sum()) and stats["lines"][split] == len(lines)
        assert stats["documents"][split] == n_docs > 0


def test_deterministic_chunk_and_worker_independent(fused, split_dir, kowiki_vocab, tmp_path):
    other = preprocess(PreprocessConfig(chunk_lines=7), split_dir, kowiki_vocab, tmp_path / "b", workers=1)
    for name in DATA_FILES:
        assert sha256_file(fused / name) == sha256_file(other / name), name
    again = preprocess(PreprocessConfig(keep_encoded=True), split_dir, kowiki_vocab, tmp_path / "c", workers=2)
    assert sha256_file(again / "manifest.json") == sha256_file(fused / "manifest.json")


def test_skip_when_complete_and_force(split_dir, kowiki_vocab, tmp_path):
    out = preprocess(PreprocessConfig(), split_dir, kowiki_vocab, tmp_path / "o")
    (out / "timing.json").write_text("{}")
    preprocess(PreprocessConfig(), split_dir, kowiki_vocab, out)
    assert (out / "timing.json").read_text() == "{}"
    preprocess(PreprocessConfig(), split_dir, kowiki_vocab, out, force=True)
    assert (out / "timing.json").read_text() != "{}"


def test_index_writer_matches_fairseq_for_every_dtype(tmp_path):
    import torch
    from fairseq.data import indexed_dataset as ids

    for n in (100, 65499, 65500, 70000, 4294967295):
        assert best_fitting_int_dtype(n) == ids.best_fitting_int_dtype(n)
    rng = np.random.default_rng(0)
    for vocab in (3000, 80000):  # uint16 and uint32
        dtype = best_fitting_int_dtype(vocab)
        items = [rng.integers(0, vocab, size=int(rng.integers(1, 50))) for _ in range(200)]
        builder = ids.make_builder(str(tmp_path / f"ref{vocab}.bin"), "mmap", vocab_size=vocab)
        for it in items:
            builder.add_item(torch.tensor(it))
        builder.finalize(str(tmp_path / f"ref{vocab}.idx"))
        (tmp_path / f"ours{vocab}.bin").write_bytes(np.concatenate(items).astype(dtype).tobytes())
        write_mmap_index(tmp_path / f"ours{vocab}.idx", np.array([len(i) for i in items]), dtype)
        for ext in ("bin", "idx"):
            assert filecmp.cmp(tmp_path / f"ref{vocab}.{ext}", tmp_path / f"ours{vocab}.{ext}", shallow=False)
        # and our readers see what fairseq's reader sees in fairseq's own files
        ref = ids.MMapIndexedDataset(str(tmp_path / f"ref{vocab}"))
        assert read_mmap_sizes(tmp_path / f"ref{vocab}.idx").tolist() == ref.sizes.tolist()
        sizes, flat = read_mmap(tmp_path / f"ref{vocab}")
        assert sizes.tolist() == ref.sizes.tolist() and flat.tolist() == np.concatenate(items).tolist()


def test_dict_from_another_spm_run_is_refused(split_dir, kowiki_vocab, tmp_path, kowiki_train_text):
    from koroberta.spm.config import SpmConfig
    from koroberta.spm.train import train_vocab

    other = train_vocab(SpmConfig(vocab_size=2600, threads=1), kowiki_train_text, tmp_path / "other")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "spm.model").write_bytes((kowiki_vocab / "spm.model").read_bytes())
    (mixed / "dict.txt").write_bytes((other / "dict.txt").read_bytes())
    with pytest.raises(InputError, match="does not belong to"):
        preprocess(PreprocessConfig(), split_dir, mixed, tmp_path / "out")
    enc = tmp_path / "enc"
    enc.mkdir()
    (enc / "train.spm").write_text("▁a\n", encoding="utf-8")
    with pytest.raises(InputError, match="does not belong to"):
        binarize(enc, mixed, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _splits(tmp_path: Path, valid: bytes) -> Path:
    d = tmp_path / "split"
    d.mkdir()
    (d / "train.txt").write_text("첫 문장.\n둘째 문장.\n", encoding="utf-8")
    (d / "valid.txt").write_bytes(valid)
    (d / "test.txt").write_text("시험.\n", encoding="utf-8")
    return d


def test_empty_split_is_refused(kowiki_vocab, tmp_path):
    d = _splits(tmp_path, b"\n\n")
    with pytest.raises(InputError, match=r"valid.txt: split has no non-blank lines"):
        preprocess(PreprocessConfig(), d, kowiki_vocab, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.tmp-*"))
    (d / "test.txt").unlink()
    with pytest.raises(InputError, match="test.txt not found"):
        preprocess(PreprocessConfig(), d, kowiki_vocab, tmp_path / "out")


def test_non_utf8_repaired_and_counted_or_refused(kowiki_vocab, tmp_path):
    d = _splits(tmp_path, "좋은 줄\n".encode() + b"bad \xff\xfe bytes\n" + "<mask> 글자\x07\n".encode())
    out = preprocess(PreprocessConfig(), d, kowiki_vocab, tmp_path / "ok")
    rep = read_manifest(out)["stats"]["splits"]["valid"]["repairs"]
    assert (rep["non_utf8"], rep["special_literals"], rep["control_or_whitespace"]) == (1, 1, 1)
    assert read_manifest(out)["stats"]["lines"]["valid"] == 3
    with pytest.raises(InputError, match=r"valid.txt: line 2 is not valid UTF-8"):
        preprocess(PreprocessConfig(bad_lines="error"), d, kowiki_vocab, tmp_path / "strict")
    (d / "valid.txt").write_bytes("좋은 줄\n<mask> 글자\n".encode())
    with pytest.raises(InputError, match=r"line 2 contains a literal '<mask>'"):
        preprocess(PreprocessConfig(bad_lines="error"), d, kowiki_vocab, tmp_path / "strict")
    (d / "valid.txt").write_bytes("좋은 줄\x1b\n".encode())
    with pytest.raises(InputError, match=r"line 1 contains control"):
        preprocess(PreprocessConfig(bad_lines="error"), d, kowiki_vocab, tmp_path / "strict")
    assert not (tmp_path / "strict").exists()


def test_cli_run_and_encode(split_dir, kowiki_vocab, tmp_path, capsys):
    from koroberta.preprocess.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["preprocess", "run", str(split_dir), str(kowiki_vocab), str(tmp_path / "db"),
                              "--workers", "2", "--no-progress", "--chunk-lines", "500"])
    assert args.func(args) == 0
    assert read_manifest(tmp_path / "db")["config"]["chunk_lines"] == 500
    args = parser.parse_args(["preprocess", "encode", "--spm-model", str(kowiki_vocab / "spm.model"),
                              str(split_dir / "valid.txt"), str(tmp_path / "valid.spm"), "--no-progress"])
    assert args.func(args) == 0
    assert "pieces/line" in capsys.readouterr().out
    n_in = len((split_dir / "valid.txt").read_text(encoding="utf-8").split("\n")) - 1
    assert len((tmp_path / "valid.spm").read_text(encoding="utf-8").split("\n")) - 1 == n_in


def test_clean_chunks_pass_the_joined_dirty_check():
    """_repair searches the \\n-joined chunk first; the join itself must not count as dirty, or every chunk of two or
    more lines falls through to the per-line search."""
    from koroberta.textfile import _DIRTY_RE

    assert _DIRTY_RE.search("가 나\n다 라\n마") is None
    assert all(_DIRTY_RE.search(f"가{c}나") for c in ("\t", "\r", "\x0b", "\x85", "\xa0", "\u3000", "\x01"))
