"""The train stage records the vocabulary it trained with, and convert holds a --vocab-dir to it.

A row count cannot tell two vocabularies of one size apart; the sha256 of the data-bin's dict.txt and of the spm
model, recorded in train_config.json (at launch) and the manifest (at completion), can
(koroberta.convert.vocab.check_trained_with). Uses the session's one real training run.
"""

from __future__ import annotations

import pytest

from koroberta.artifacts import read_json, read_manifest, sha256_file
from koroberta.convert.checkpoint import load_checkpoint
from koroberta.convert.vocab import check_trained_with, resolve_vocab
from koroberta.errors import InputError
from koroberta.spm.config import SpmConfig
from koroberta.spm.train import train_vocab
from koroberta.train.preflight import TRAIN_STATE


def test_train_records_dict_and_spm_hashes_convert_compares(trained, tiny_databin, tiny_vocab, kowiki_train_text,
                                                           tmp_path):
    _, save, ckpt, _ = trained
    want = {"dict_sha256": sha256_file(tiny_databin / "dict.txt"),
            "spm_sha256": sha256_file(tiny_databin / "spm.model")}
    state = read_json(save / TRAIN_STATE)
    stats = read_manifest(save)["stats"]
    assert {k: state[k] for k in want} == want and {k: stats[k] for k in want} == want
    ck = load_checkpoint(ckpt)
    check_trained_with(ck, resolve_vocab(tiny_vocab, ck.vocab_rows))  # the vocab it was trained with
    other = train_vocab(SpmConfig(vocab_size=2000, threads=1), kowiki_train_text, tmp_path / "other")  # same size
    with pytest.raises(InputError, match="dict.txt is not the vocabulary checkpoint_last.pt was trained with"):
        check_trained_with(ck, resolve_vocab(other, ck.vocab_rows))
