"""Inputs that do not belong together are refused before any work, in one line naming the file and the fix.

A stage's inputs can each be valid and still not belong together: a vocabulary of the right size that is not the
one the checkpoint was trained with (its export would load and run, every token meaning something else), an spm
model with the data-bin's pieces but other scores, a data-bin or save dir where a checkpoint file belongs. Each case
calls the CLI in-process: exit code 2, one stderr line naming the file and the fix, no traceback, nothing complete.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from koroberta.spm.config import SpmConfig
from koroberta.spm.train import train_vocab

from cli_errors import main_error

from train.train_tiny import TINY


@pytest.fixture(scope="module")
def other_vocab(tmp_path_factory, kowiki_train_text) -> Path:
    """2,000 pieces like the tiny fixture vocab (so 2,008 rows: the checkpoint's), from other text: other pieces."""
    return train_vocab(SpmConfig(vocab_size=2000, threads=1), kowiki_train_text, tmp_path_factory.mktemp("o") / "v")


@pytest.fixture(scope="module")
def rescored_vocab(tmp_path_factory, tiny_vocab) -> Path:
    """The tiny vocab's pieces and dict.txt with other piece scores: the dict cannot tell, the segmentation can."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    out = tmp_path_factory.mktemp("rescored")
    shutil.copy(tiny_vocab / "dict.txt", out / "dict.txt")
    proto = pb.ModelProto()
    proto.ParseFromString((tiny_vocab / "spm.model").read_bytes())
    for i, piece in enumerate(proto.pieces):
        if piece.type == pb.ModelProto.SentencePiece.NORMAL and i % 3 == 0:
            piece.score -= 1.5
    (out / "spm.model").write_bytes(proto.SerializeToString())
    return out


def _convert(ckpt: Path, vocab: Path, out: Path) -> list[str]:
    return ["convert", str(ckpt), str(vocab), str(out), "--no-parity", "--parity-lines", "5"]


def test_convert_refuses_a_vocab_of_the_same_size_from_another_run(tiny_checkpoint, tiny_databin, other_vocab,
                                                                   tmp_path, capsys):
    out = tmp_path / "hf"
    main_error(capsys, _convert(tiny_checkpoint, other_vocab, out), f"error: {other_vocab / 'dict.txt'}: ",
              f"not the vocabulary {tiny_checkpoint.name} was trained with", f"data-bin {tiny_databin}",
              "first difference at line", f"pass {tiny_databin} as VOCAB_DIR", out=out)
    assert not out.exists()


def test_convert_refuses_an_spm_model_with_the_same_pieces_and_other_scores(tiny_checkpoint, rescored_vocab,
                                                                            tmp_path, capsys):
    out = tmp_path / "hf"
    main_error(capsys, _convert(tiny_checkpoint, rescored_vocab, out), f"error: {rescored_vocab / 'spm.model'}: ",
              "segment text differently", out=out)
    assert not out.exists()


def test_convert_compares_with_the_train_record_when_the_data_bin_is_gone(tiny_checkpoint, tiny_vocab, other_vocab,
                                                                          rescored_vocab, tmp_path, capsys):
    import torch

    from koroberta.artifacts import sha256_file, write_json
    from koroberta.convert.checkpoint import load_checkpoint
    from koroberta.convert.vocab import check_trained_with, resolve_vocab
    from koroberta.train.preflight import TRAIN_STATE

    obj = torch.load(tiny_checkpoint, map_location="cpu", weights_only=False)
    task = obj["cfg"]["task"]
    if isinstance(task, dict):
        task["data"] = str(tmp_path / "moved-away")
    else:
        task.data = str(tmp_path / "moved-away")
    save = tmp_path / "checkpoints"
    save.mkdir()
    ckpt = save / "checkpoint_best.pt"
    torch.save(obj, ckpt)
    ck = load_checkpoint(ckpt)
    check_trained_with(ck, resolve_vocab(other_vocab, ck.vocab_rows))  # nothing recorded: row counts only
    write_json(save / TRAIN_STATE, {"dict_sha256": sha256_file(tiny_vocab / "dict.txt"),
                                    "spm_sha256": sha256_file(tiny_vocab / "spm.model")})
    check_trained_with(ck, resolve_vocab(tiny_vocab, ck.vocab_rows))  # the vocab it was trained with passes
    out = tmp_path / "hf"
    main_error(capsys, _convert(ckpt, other_vocab, out), f"error: {other_vocab / 'dict.txt'}: ",
              "not the one checkpoint_best.pt was trained with", str(save / TRAIN_STATE), out=out)
    main_error(capsys, _convert(ckpt, rescored_vocab, out), f"error: {rescored_vocab / 'spm.model'}: ",
              str(save / TRAIN_STATE), out=out)
    assert not out.exists()


def test_convert_given_a_directory_instead_of_a_checkpoint(tiny_checkpoint, tiny_databin, tiny_vocab, tmp_path,
                                                            capsys):
    out = tmp_path / "hf"
    main_error(capsys, _convert(tiny_databin, tiny_vocab, out),
              f"error: {tiny_databin}: a data-bin directory (preprocess output), not a fairseq checkpoint file")
    save = tiny_checkpoint.parent
    main_error(capsys, _convert(save, tiny_vocab, out), "a directory of checkpoints",
              f"fix: pass {save / 'checkpoint_last.pt'}")
    assert not out.exists()


def test_train_refuses_a_data_bin_whose_dict_is_not_the_spm_models(tiny_databin, other_vocab, tmp_path, capsys):
    cfg = tmp_path / "train.yaml"
    cfg.write_text(yaml.safe_dump({"train": {**TINY, "recipe": None}}), encoding="utf-8")
    save = tmp_path / "ckpt"
    main_error(capsys, ["train", str(cfg), str(tiny_databin), str(save), "--spm-model",
                       str(other_vocab / "spm.model"), "--dry-run"],
              f"error: {tiny_databin / 'dict.txt'}: dict.txt does not belong to {other_vocab / 'spm.model'}")
    assert not save.exists()


@pytest.mark.parametrize("stage", ["finetune", "eval"])
def test_finetune_and_eval_given_a_checkpoint_dir_or_data_bin(stage, tiny_checkpoint, tiny_databin, tmp_path,
                                                              capsys):
    tsv = Path(__file__).parent / "fixtures" / "nsmc-tiny.tsv"
    for wrong in (tiny_checkpoint.parent, tiny_databin, tiny_checkpoint):
        out = tmp_path / "out"
        argv = (["finetune", "nsmc", str(wrong), str(tsv), str(out)] if stage == "finetune"
                else ["eval", "nsmc", str(wrong), "--train", str(tsv), "--out", str(out)])
        main_error(capsys, argv, f"error: {wrong}: ", "`koroberta convert`", out=out)


def test_preprocess_given_the_corpus_dir_instead_of_its_split(tiny_split, tiny_vocab, tmp_path, capsys):
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_split, corpus / "split")
    out = tmp_path / "bin"
    main_error(capsys, ["preprocess", "run", str(corpus), str(tiny_vocab), str(out)], f"error: {corpus}: ",
              "split directory", out=out)
    main_error(capsys, ["preprocess", "run", str(tiny_vocab), str(corpus / "split"), str(out)],  # swapped
              f"error: {tiny_vocab}: ", out=out)
    assert not out.exists()
