"""koroberta preprocess with an imported Hugging Face vocab (``koroberta import-hf``): fairseq id = HF id.

Two tokenizer layouts users bring (tests/hf_models.py): a klue-style WordPiece (``[CLS] [PAD] [SEP] [UNK] [MASK]``
at ids 0-4) and an XLM-R-style spm Unigram (``<mask>`` last). Vocab directories are made by the import's own
tokenizer half (``write_vocab``: no model needed), from tokenizers trained here on 1,200 kowiki lines.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from koroberta.artifacts import read_manifest
from koroberta.databin import read_mmap
from koroberta.errors import InputError
from koroberta.hfvocab import load_hf_vocab
from koroberta.layout import EOS
from koroberta.preprocess.build import preprocess
from koroberta.preprocess.config import PreprocessConfig
from koroberta.text import clean_text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cli_errors import main_error  # noqa: E402
from hf_models import padded_rows, wordpiece_tokenizer, xlmr_tokenizer  # noqa: E402

pytest.importorskip("tokenizers")
pytest.importorskip("transformers")

LAYOUTS = ("wordpiece", "xlmr")
MASK_LITERAL = {"wordpiece": "[MASK]", "xlmr": "<mask>"}
#: fairseq-preprocess --workers for the reference run (the fused runs use 1 and 2): both counts, one run per layout
FAIRSEQ_WORKERS = {"wordpiece": 1, "xlmr": 2}
DATA_FILES = ("dict.txt", "train.bin", "train.idx", "valid.bin", "valid.idx", "test.bin", "test.idx")
# unknown characters (-> the unk id), control characters and odd whitespace (repaired by the reader), whitespace-only
# and blank lines, a leading blank line; no literal special token (those have their own test)
EDGE = ["", "𓀀𓀁 상형문자 😀 and 漢字𠀀", "tab\tand\x1cfile sep\u3000ideographic", "   ", "", "", "\u00a0nbsp\u2028line sep",
        "끝."]


@pytest.fixture(scope="module")
def vocabs(tmp_path_factory, kowiki_line_list) -> dict[str, Path]:
    from tokenizers import Tokenizer

    from koroberta.importhf.vocab import write_vocab

    lines = kowiki_line_list[:1200]
    root = tmp_path_factory.mktemp("hf_vocab")
    out = {}
    for name, build in (("wordpiece", wordpiece_tokenizer), ("xlmr", xlmr_tokenizer)):
        hf = build(lines, root / f"{name}-hf")
        n = Tokenizer.from_file(str(hf / "tokenizer.json")).get_vocab_size(with_added_tokens=True)
        write_vocab(hf, root / name, rows=padded_rows(n))  # a padded embedding: filler rows past the tokenizer
        out[name] = root / name
    return out


@pytest.fixture(scope="module")
def split(tmp_path_factory, kowiki_line_list) -> Path:
    d = tmp_path_factory.mktemp("hf_split")
    lines = kowiki_line_list  # from 1,200 on: lines the tokenizers were not trained on
    (d / "train.txt").write_text("\n".join(lines[1200:1800]) + "\n", encoding="utf-8")
    (d / "valid.txt").write_text("\n".join(EDGE + lines[1800:1950]) + "\n", encoding="utf-8")
    (d / "test.txt").write_text("\n".join(lines[1950:2100] + EDGE), encoding="utf-8")  # no trailing newline
    return d


@pytest.fixture(scope="module", params=LAYOUTS)
def layout(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def fused(tmp_path_factory, layout, vocabs, split) -> Path:
    return preprocess(PreprocessConfig(keep_encoded=True), split, vocabs[layout],
                      tmp_path_factory.mktemp(f"hf_pp_{layout}") / "fused", workers=2)


def _lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")


@pytest.mark.slow
def test_methods_and_worker_counts_are_byte_identical(fused, layout, vocabs, split, tmp_path):
    env = os.environ.get("TOKENIZERS_PARALLELISM")
    one = preprocess(PreprocessConfig(keep_encoded=True, chunk_lines=7), split, vocabs[layout], tmp_path / "one",
                     workers=1)
    ref = preprocess(PreprocessConfig(method="fairseq", keep_encoded=True), split, vocabs[layout], tmp_path / "ref",
                     workers=FAIRSEQ_WORKERS[layout])
    assert os.environ.get("TOKENIZERS_PARALLELISM") == env  # set only while encoding
    names = DATA_FILES + ("train.spm", "valid.spm", "test.spm", "tokenizer/tokenizer.json")
    for other in (one, ref):
        for name in names:
            assert filecmp.cmp(fused / name, other / name, shallow=False), (other.name, name)
    a, b = read_manifest(fused)["stats"], read_manifest(ref)["stats"]
    for k in ("tokens", "lines", "documents", "unk_rate", "vocab_kind", "tokenizer_sha256", "dict_sha256", "mask_id",
              "dtype", "vocab_size", "max_id", "splits"):
        assert a[k] == b[k], k


def test_ids_are_the_tokenizers_ids(fused, layout, vocabs, split):
    """Each .bin item is ``tokenizer.encode(line, add_special_tokens=False).ids + [eos]`` (a blank line: ``[eos]``),
    and fairseq's Dictionary maps the kept piece text back to the same ids."""
    from fairseq.data import Dictionary

    hf = load_hf_vocab(vocabs[layout])
    tok = hf.tokenizer()
    d = Dictionary.load(str(fused / "dict.txt"))
    assert d.add_symbol("<mask>") == hf.mask_id and len(d) == hf.rows  # what masked_lm does: no new row
    for s in ("train", "valid", "test"):
        text = _lines(split / f"{s}.txt")
        pieces = _lines(fused / f"{s}.spm")
        sizes, flat = read_mmap(fused / s)
        assert len(text) == len(pieces) == len(sizes)
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        for k, line in enumerate(text):
            want = tok.encode(clean_text(line), add_special_tokens=False).ids + [EOS]  # the reader's repair
            assert flat[offsets[k]:offsets[k + 1]].tolist() == want, (s, k, line)
            assert d.encode_line(pieces[k], append_eos=True, add_if_not_exist=False).tolist() == want, (s, k)
            if not line.strip():
                assert want == [EOS]
        assert hf.mask_id not in set(flat.tolist())
    stats = read_manifest(fused)["stats"]
    assert stats["vocab_kind"] == "hf" and stats["vocab_size"] == hf.rows and stats["mask_id"] == hf.mask_id
    assert stats["dtype"] == "uint16" and stats["splits"]["valid"]["unk"] > 0 and stats["unk_rate"] > 0
    assert stats["lines"]["valid"] == len(EDGE) + 150
    assert stats["max_id"] == {s: int(read_mmap(fused / s)[1].max()) for s in ("train", "valid", "test")}
    assert "spm_sha256" not in stats and not (fused / "spm.model").exists()
    for f in (vocabs[layout] / "tokenizer").iterdir():  # the original tokenizer files travel with the data-bin
        assert filecmp.cmp(f, fused / "tokenizer" / f.name, shallow=False), f.name


@pytest.mark.parametrize("name", LAYOUTS)
def test_literal_special_tokens_are_removed_or_refused(name, vocabs, tmp_path):
    """The tokenizer reads its special strings in raw text as special ids (a literal [MASK] = the mask id, which
    fairseq's masked_lm refuses in its data): repair removes them (counted), error refuses the line."""
    hf = load_hf_vocab(vocabs[name])
    tok = hf.tokenizer()
    lit, other = MASK_LITERAL[name], [x for x in hf.literals if x != MASK_LITERAL[name]][0]
    d = tmp_path / "split"
    d.mkdir()
    valid = ["좋은 줄.", f"앞 {lit} 뒤{other}.", lit, f"겹친 {lit[:2]}{lit}{lit[2:]} 끝", "끝 줄."]
    (d / "train.txt").write_text("첫 문장.\n둘째 문장.\n", encoding="utf-8")
    (d / "valid.txt").write_text("\n".join(valid) + "\n", encoding="utf-8")
    (d / "test.txt").write_text("시험.\n", encoding="utf-8")
    out = preprocess(PreprocessConfig(), d, vocabs[name], tmp_path / "ok")
    rep = read_manifest(out)["stats"]["splits"]["valid"]["repairs"]
    assert rep["special_literals"] == 3 and rep["control_or_whitespace"] == 0
    assert rep["examples"] == [f"line 2: literal {lit} removed", f"line 3: literal {lit} removed",
                               f"line 4: literal {lit} removed"]
    sizes, flat = read_mmap(out / "valid")
    items = np.split(flat, np.cumsum(sizes)[:-1])
    for k, repaired in enumerate(["좋은 줄.", "앞 뒤.", "", "겹친 끝", "끝 줄."]):
        assert items[k].tolist() == tok.encode(repaired, add_special_tokens=False).ids + [EOS], k
    assert items[2].tolist() == [EOS]  # nothing but a literal: blank, one item per input line as always
    assert hf.mask_id not in set(flat.tolist())
    with pytest.raises(InputError, match=rf"valid.txt: line 2 contains a literal '{re.escape(lit)}'"):
        preprocess(PreprocessConfig(bad_lines="error"), d, vocabs[name], tmp_path / "strict")
    assert not (tmp_path / "strict").exists()


def test_koroberta_literals_are_text_to_a_wordpiece_tokenizer(vocabs, tmp_path):
    """``<mask>``/``<s>`` mean nothing to a klue-style tokenizer: encoded as the text they are, not removed nor
    counted (only the tokenizer's own special strings are), and not refused with ``bad_lines: error``."""
    tok = load_hf_vocab(vocabs["wordpiece"]).tokenizer()
    d = tmp_path / "split"
    d.mkdir()
    for s in ("train", "valid", "test"):
        (d / f"{s}.txt").write_text("가 <mask> 나 <s>취소선</s>\n", encoding="utf-8")
    out = preprocess(PreprocessConfig(), d, vocabs["wordpiece"], tmp_path / "db")
    want = tok.encode("가 <mask> 나 <s>취소선</s>", add_special_tokens=False).ids
    assert read_mmap(out / "valid")[1].tolist() == want + [EOS] and len(want) > 5
    assert read_manifest(out)["stats"]["splits"]["valid"]["repairs"]["special_literals"] == 0
    strict = preprocess(PreprocessConfig(bad_lines="error"), d, vocabs["wordpiece"], tmp_path / "db-strict")
    assert (strict / "valid.bin").read_bytes() == (out / "valid.bin").read_bytes()


def test_edited_vocab_dir_is_refused(vocabs, split, tmp_path, capsys):
    for edited in ("dict.txt", "tokenizer/tokenizer.json"):
        v = tmp_path / f"v-{edited.split('/')[0]}"
        shutil.copytree(vocabs["wordpiece"], v)
        with open(v / edited, "a", encoding="utf-8") as f:
            f.write("\n" if edited.endswith(".json") else "추가된 1\n")
        with pytest.raises(InputError, match=rf"{Path(edited).name}: {Path(edited).name} is not the file the import"):
            preprocess(PreprocessConfig(), split, v, tmp_path / "out")
    main_error(capsys, ["preprocess", "run", split, tmp_path / "v-dict.txt", tmp_path / "out"], "dict.txt",
               "koroberta import-hf", out=tmp_path / "out")


def test_cli_run_with_an_imported_vocab(vocabs, split, tmp_path, capsys):
    from koroberta.preprocess.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["preprocess", "run", str(split), str(vocabs["xlmr"]), str(tmp_path / "db"),
                              "--workers", "2", "--no-progress"])
    assert args.func(args) == 0
    assert "unk rate" in capsys.readouterr().out
    m = read_manifest(tmp_path / "db")
    assert m["stats"]["vocab_kind"] == "hf" and (tmp_path / "db" / "tokenizer" / "tokenizer.json").is_file()
    assert set(m["inputs"]) >= {"tokenizer", "dict", "vocab_record"} and "spm_model" not in m["inputs"]
    # `preprocess encode` takes the imported vocab dir where it takes an spm.model: the same piece text
    args = parser.parse_args(["preprocess", "encode", str(vocabs["xlmr"]), str(split / "valid.txt"),
                              str(tmp_path / "valid.spm"), "--no-progress"])
    assert args.func(args) == 0
    kept = preprocess(PreprocessConfig(keep_encoded=True), split, vocabs["xlmr"], tmp_path / "kept")
    assert filecmp.cmp(tmp_path / "valid.spm", kept / "valid.spm", shallow=False)
    # and `preprocess binarize` makes the same data-bin of the kept piece text (fairseq-preprocess, 1 worker)
    args = parser.parse_args(["preprocess", "binarize", str(kept), str(vocabs["xlmr"]), str(tmp_path / "bin"),
                              "--workers", "1"])
    assert args.func(args) == 0
    for name in DATA_FILES + ("tokenizer/tokenizer.json",):
        assert filecmp.cmp(kept / name, tmp_path / "bin" / name, shallow=False), name
    assert read_manifest(tmp_path / "bin")["stats"]["max_id"] == read_manifest(kept)["stats"]["max_id"]


def test_train_preflight_checks_an_hf_data_bin(fused, layout, vocabs, tmp_path):
    """check_data_bin: the rows are dict.txt's (its <mask> row is the mask, none appended), no spm.model is looked
    for, and the copied tokenizer must be the one the manifest records."""
    from koroberta.train.preflight import check_data_bin

    hf = load_hf_vocab(vocabs[layout])
    vocab, spm_model, stats, sizes, subsets = check_data_bin(fused)
    assert (vocab, spm_model, subsets) == (hf.rows, None, ["valid"]) and stats["vocab_kind"] == "hf"
    with pytest.raises(InputError, match="encoded with an imported Hugging Face tokenizer"):
        check_data_bin(fused, tmp_path / "spm.model")
    db = tmp_path / "db"
    shutil.copytree(fused, db)
    tj = db / "tokenizer" / "tokenizer.json"
    data = tj.read_bytes()
    tj.write_bytes(data[:-2] + (b"  " if data[-2:] != b"  " else b"\n\n"))  # same size, other bytes
    with pytest.raises(InputError, match="tokenizer.json: not the tokenizer the data-bin was encoded with"):
        check_data_bin(db)
    # a data-bin made elsewhere (no manifest) holding the mask id: fairseq's masked_lm would assert at load
    for f in ("manifest.json", "_COMPLETE"):
        (db / f).unlink()
    sizes, flat = read_mmap(db / "valid")
    flat = flat.copy()
    flat[1] = hf.mask_id
    (db / "valid.bin").write_bytes(flat.tobytes())
    with pytest.raises(InputError, match=rf"valid.bin: holds the <mask> id {hf.mask_id}"):
        check_data_bin(db)


def test_a_special_id_from_the_tokenizer_itself_is_refused(vocabs, tmp_path):
    """The last guard: a special id in the encoded ids although no literal is left (a special token matched after
    the tokenizer's normalizer, which the raw-text literal scan cannot see) names the line instead of reaching
    fairseq; the unk id is the model's answer to unknown text and only counted."""
    from koroberta.preprocess.encode import HFEncoder

    hf = load_hf_vocab(vocabs["wordpiece"])
    enc = HFEncoder(hf)
    lengths = np.array([2, 0, 3])
    assert enc.count_unk([[7, hf.unk_id], [], [8, 9, hf.unk_id]], lengths, 1, tmp_path / "t.txt") == 2
    for special in (0, 1, 2, hf.mask_id):
        with pytest.raises(InputError, match=rf"t.txt: line 12 encodes to the special token .* \(id {special}\)"):
            enc.count_unk([[7, 8], [], [9, special, 10]], lengths, 10, tmp_path / "t.txt")
        with pytest.raises(InputError, match="line 12 encodes to the special token"):
            enc.to_fairseq(np.array([7, 8, 9, special, 10]), lengths, 10, tmp_path / "t.txt")
