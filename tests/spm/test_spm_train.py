"""koroberta spm train: layout, determinism, skip/force, errors."""

from __future__ import annotations

import argparse
import json

import pytest

from koroberta.artifacts import read_manifest, sha256_file
from koroberta.errors import ConfigError, InputError
from koroberta.spm.config import SpmConfig
from koroberta.spm.train import train_vocab
from koroberta.layout import MASK, OFFSET, check_dict_matches


def test_outputs_follow_layout(kowiki_vocab, kowiki_train_text):
    import sentencepiece as spm
    from fairseq.data import Dictionary

    for name in ("spm.model", "spm.vocab", "dict.txt", "manifest.json", "_COMPLETE"):
        assert (kowiki_vocab / name).is_file()
    vocab = check_dict_matches(kowiki_vocab / "dict.txt", kowiki_vocab / "spm.model")
    stats = read_manifest(kowiki_vocab)["stats"]
    d = Dictionary.load(str(kowiki_vocab / "dict.txt"))
    mask = d.add_symbol(MASK)
    assert len(d) == stats["final_vocab_size"] == mask + 1 and len(d) % 8 == 0
    assert stats["pieces"] == 3000 and stats["fillers"] == len(vocab.fillers) == (-(3000 + 2)) % 8
    sp = spm.SentencePieceProcessor(model_file=str(kowiki_vocab / "spm.model"))
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.pad_id()) == (0, 1, 2, -1)
    assert sp.get_piece_size() == 3000
    for i in range(3, 3000):
        assert d.index(sp.id_to_piece(i)) == i + OFFSET
    lines = kowiki_train_text.read_text(encoding="utf-8").split("\n")[:-1]
    assert stats["sentences_read"] == sum(1 for l in lines if l.strip())  # blank lines skipped
    assert stats["blank_lines_skipped"] == sum(1 for l in lines if not l.strip())
    timing = json.loads((kowiki_vocab / "timing.json").read_text())
    assert timing["train_s"] > 0 and timing["peak_rss_mb"] > 0


def test_deterministic_and_skip(kowiki_train_text, tmp_path):
    cfg = SpmConfig(vocab_size=2500, threads=2, input_sentence_size=1500, shuffle=True, seed=3)
    a = train_vocab(cfg, kowiki_train_text, tmp_path / "a")
    b = train_vocab(cfg, kowiki_train_text, tmp_path / "b")
    for name in ("spm.model", "dict.txt", "manifest.json"):
        assert sha256_file(a / name) == sha256_file(b / name), name
    before = (a / "timing.json").read_text()
    (a / "timing.json").write_text("{}")  # would be rewritten by a retrain
    assert train_vocab(cfg, kowiki_train_text, a) == a and (a / "timing.json").read_text() == "{}"
    train_vocab(cfg, kowiki_train_text, a, force=True)
    assert (a / "timing.json").read_text() != "{}" and before
    other = train_vocab(cfg.replace(seed=4), kowiki_train_text, tmp_path / "c")
    assert read_manifest(other)["stats"]["sentences_read"] == read_manifest(a)["stats"]["sentences_read"]


def test_bpe_and_small_vocab(kowiki_train_text, tmp_path):
    out = train_vocab(SpmConfig(model_type="bpe", vocab_size=2500, threads=1), kowiki_train_text, tmp_path / "bpe")
    v = check_dict_matches(out / "dict.txt", out / "spm.model", pad_to=8)
    assert len(v.fairseq_symbols()) % 8 == 0


def test_vocab_too_large_is_config_error(tmp_path):
    p = tmp_path / "train.txt"
    p.write_text("가나다 라마\n\n바사 아자\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="hard_vocab_limit"):
        train_vocab(SpmConfig(vocab_size=5000, threads=1), p, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.tmp-*"))
    out = train_vocab(SpmConfig(vocab_size=5000, threads=1, hard_vocab_limit=False), p, tmp_path / "soft")
    assert read_manifest(out)["stats"]["pieces"] < 5000


def test_empty_or_missing_train_split(tmp_path):
    p = tmp_path / "train.txt"
    p.write_text("\n\n  \n", encoding="utf-8")
    with pytest.raises(InputError, match="no non-blank lines"):
        train_vocab(SpmConfig(vocab_size=100, threads=1), p, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="not found"):
        train_vocab(SpmConfig(), tmp_path / "nope.txt", tmp_path / "out")


def test_config_validation():
    with pytest.raises(ConfigError, match="model_type"):
        SpmConfig(model_type="wordpiece")
    with pytest.raises(ConfigError, match="unknown key"):
        SpmConfig.from_dict({"vocab_sise": 8000})
    with pytest.raises(ConfigError):
        SpmConfig(vocab_size=4)


def test_alphabet_larger_than_vocab_is_config_error(kowiki_train_text, tmp_path):
    with pytest.raises(ConfigError, match="character_coverage"):
        train_vocab(SpmConfig(vocab_size=300, threads=1), kowiki_train_text, tmp_path / "out")


def test_cli_train(kowiki_train_text, tmp_path, capsys):
    from koroberta.spm.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("spm:\n  vocab_size: 800\n  threads: 1\n", encoding="utf-8")
    args = parser.parse_args(["spm", "train", str(kowiki_train_text), str(tmp_path / "o"), "--config", str(cfg),
                              "--pad-to", "16", "--vocab-size", "2600", "--no-shuffle"])
    assert args.func(args) == 0
    m = read_manifest(tmp_path / "o")
    assert m["config"]["vocab_size"] == 2600 and m["config"]["threads"] == 1 and m["config"]["pad_to"] == 16 and m["config"]["shuffle"] is False
    assert m["stats"]["final_vocab_size"] % 16 == 0
    assert "final vocab" in capsys.readouterr().out
