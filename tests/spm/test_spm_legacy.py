"""koroberta spm import-legacy on a KoRoBERTa-style fixture built here: BERT-style spm + frequency-ordered dict."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import pytest

from koroberta.errors import InputError
from koroberta.spm.legacy import import_legacy
from koroberta.layout import MASK


@pytest.fixture(scope="module")
def legacy(tmp_path_factory, kowiki_line_list) -> tuple[Path, Path, list[str]]:
    """spm with [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4 and a dict.txt of spm-id strings sorted by frequency,
    padded with madeupword fillers the way ``fairseq-preprocess`` pads (to a multiple of 8 incl. its specials)."""
    import sentencepiece as spm

    d = tmp_path_factory.mktemp("legacy")
    lines = [l for l in kowiki_line_list if l.strip()]
    train, held_out = lines[:1500], lines[2500:]
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(train), model_prefix=str(d / "legacy"), vocab_size=2500, num_threads=1, minloglevel=2,
        pad_id=0, pad_piece="[PAD]", unk_id=1, unk_piece="[UNK]", bos_id=-1, eos_id=-1,
        user_defined_symbols=["[CLS]", "[SEP]", "[MASK]"])
    sp = spm.SentencePieceProcessor(model_file=str(d / "legacy.model"))
    counts = Counter(i for row in sp.encode(train[:800]) for i in row)  # not every piece occurs: unseen ids exist
    rows = [f"{i} {c}" for i, c in counts.most_common()]
    rows += [f"madeupword{k:04d} 0" for k in range((-(len(rows) + 4)) % 8)]
    (d / "dict.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return d / "legacy.model", d / "dict.txt", held_out


def test_legacy_map_reproduces_fairseq_rows(legacy, tmp_path):
    import sentencepiece as spm
    from fairseq.data import Dictionary

    model, dict_txt, held_out = legacy
    out = import_legacy(model, dict_txt, tmp_path / "imp")
    m = json.loads((out / "legacy_map.json").read_text(encoding="utf-8"))
    d = Dictionary.load(str(dict_txt))
    mask = d.add_symbol(MASK)  # what the masked_lm task does
    assert m["fairseq_rows"] == len(d) and m["mask_id"] == mask
    for row in m["rows"]:
        assert d[row["fairseq_id"]] == row["symbol"]
        if row["kind"] == "piece":
            assert row["spm_id"] == int(row["symbol"])
    sp = spm.SentencePieceProcessor(model_file=str(model))
    assert [sp.id_to_piece(i) for i in range(5)] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert {k: v["legacy_piece"] for k, v in m["specials"].items()} == {
        "<s>": "[CLS]", "<pad>": "[PAD]", "</s>": "[SEP]", "<unk>": "[UNK]", MASK: "[MASK]"}
    assert m["specials"][MASK]["fairseq_id"] == mask
    assert m["unseen_spm_ids"] > 0
    n_checked = 0
    for line in held_out[:300]:  # held-out text: includes spm ids the legacy dict never counted
        ids = sp.encode(line)
        want = d.encode_line(" ".join(map(str, ids)), append_eos=False, add_if_not_exist=False).tolist()
        assert [m["spm_to_fairseq"][i] for i in ids] == want
        n_checked += len(ids)
    assert n_checked > 10000
    assert any(m["spm_to_fairseq"][i] == d.unk() for i in range(5, m["spm_pieces"]))


def test_legacy_rejects_foreign_dict(legacy, tmp_path):
    model, _, _ = legacy
    bad = tmp_path / "dict.txt"
    bad.write_text("5 10\n99999 3\n", encoding="utf-8")
    with pytest.raises(InputError, match="only 2500 pieces"):
        import_legacy(model, bad, tmp_path / "o")
    bad.write_text("▁의 10\n", encoding="utf-8")
    with pytest.raises(InputError, match="neither an spm id"):
        import_legacy(model, bad, tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_cli_import_legacy(legacy, tmp_path):
    from koroberta.artifacts import read_manifest
    from koroberta.spm.cli import register

    model, dict_txt, _ = legacy
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["spm", "import-legacy", str(model), str(dict_txt), str(tmp_path / "o")])
    assert args.func(args) == 0
    assert read_manifest(tmp_path / "o")["stats"]["spm_pieces"] == 2500
    # the options it took before the paths were positional, as existing scripts pass them
    args = parser.parse_args(["spm", "import-legacy", "--spm-model", str(model), "--dict", str(dict_txt),
                              "--out", str(tmp_path / "old")])
    assert args.func(args) == 0
    assert (tmp_path / "old" / "legacy_map.json").read_bytes() == (tmp_path / "o" / "legacy_map.json").read_bytes()
