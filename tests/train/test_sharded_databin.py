"""Training on a sharded data-bin (preprocess.shards): fairseq-train gets DATA_BIN/shard0:DATA_BIN/shard1 and loads
one shard per epoch; preflight checks every shard and the data fingerprint covers them all."""

from __future__ import annotations

import io
import math
import re
import shutil
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from koroberta.artifacts import read_manifest
from koroberta.databin import data_fingerprint, shard_names
from koroberta.errors import InputError
from koroberta.train.command import fairseq_args
from koroberta.train.config import TrainConfig
from koroberta.train.launch import is_trained, train
from koroberta.train.preflight import preflight

from train_tiny import TINY

CPU = (False, 0, "cpu")


@pytest.fixture(scope="module")
def sharded(tmp_path_factory, kowiki_docs, tiny_vocab) -> Path:
    """6 train documents in 2 shards (~10 updates per epoch of TINY), valid/test in shard0."""
    from koroberta.preprocess.build import preprocess
    from koroberta.preprocess.config import PreprocessConfig

    split = tmp_path_factory.mktemp("split")
    for name, docs in (("train", kowiki_docs[:6]), ("valid", kowiki_docs[70:72]), ("test", kowiki_docs[76:78])):
        (split / f"{name}.txt").write_text("\n\n".join("\n".join(d) for d in docs) + "\n", encoding="utf-8")
    db = preprocess(PreprocessConfig(shards=2), split, tiny_vocab, tmp_path_factory.mktemp("db") / "data-bin")
    assert all(read_manifest(db)["stats"]["shard_documents"])
    return db


def test_the_command_names_every_shard(sharded, tmp_path):
    cfg = TrainConfig(**TINY)
    data = f"{sharded}/shard0:{sharded}/shard1"
    assert fairseq_args(cfg, sharded, "s", cuda=False, shards=["shard0", "shard1"])[0] == data
    assert fairseq_args(cfg, sharded, "s", cuda=False)[0] == str(sharded)  # one directory: as it always was
    pf = preflight(cfg, sharded, tmp_path / "ckpt", cuda_info=CPU)
    assert pf.shards == ["shard0", "shard1"] and pf.dict_path == sharded / "shard0" / "dict.txt"
    assert pf.train_tokens == sum(read_manifest(sharded)["stats"]["shard_tokens"])
    out = io.StringIO()
    with redirect_stdout(out):
        train(cfg, sharded, tmp_path / "ckpt", dry_run=True)
    command = next(l for l in out.getvalue().splitlines() if l.startswith("command: "))
    assert f" {data} " in command
    assert "shards: train in 2 shards" in out.getvalue()


def test_fairseq_trains_two_epochs_one_shard_each(sharded, tmp_path):
    """A real run into its second epoch: fairseq loads shard0's train, then shard1's, and validates on shard0's."""
    tokens = read_manifest(sharded)["stats"]["shard_tokens"]
    # sample_break_mode none: blocks of tokens_per_sample - 1 (fairseq adds <s>), batch_size blocks per update
    epoch1 = math.ceil(math.ceil(tokens[0] / (TINY["tokens_per_sample"] - 1)) / TINY["batch_size"])
    cfg = TrainConfig(**{**TINY, "max_update": epoch1 + 2, "validate_interval_updates": epoch1 + 2,
                         "save_interval_updates": epoch1 + 2})
    save = tmp_path / "ckpt"
    with redirect_stdout(io.StringIO()):
        ckpt = train(cfg, sharded, save)
    assert ckpt.is_file() and is_trained(save, cfg, data_fingerprint(sharded))
    loaded = re.findall(r"loaded [\d,]+ blocks from: (\S+)", (save / "train.log").read_text(encoding="utf-8"))
    assert f"{sharded}/shard0/train" in loaded and f"{sharded}/shard1/train" in loaded
    assert loaded.index(f"{sharded}/shard0/train") < loaded.index(f"{sharded}/shard1/train")
    assert f"{sharded}/shard0/valid" in loaded and not any(p.startswith(f"{sharded}/shard1/valid") for p in loaded)


def _copy_without_manifest(db: Path, dst: Path) -> Path:
    """A copied or hand-made sharded data-bin: the same files, no manifest (preflight finds the shards itself)."""
    shutil.copytree(db, dst)
    for name in ("manifest.json", "_COMPLETE", "timing.json"):
        (dst / name).unlink(missing_ok=True)
    return dst


def test_preflight_refuses_a_shard_with_another_dict(sharded, tmp_path):
    cfg = TrainConfig(**TINY)
    # with the manifest: the edited file no longer has its recorded sha256
    db = tmp_path / "edited"
    shutil.copytree(sharded, db)
    text = (db / "shard1" / "dict.txt").read_text(encoding="utf-8").splitlines(keepends=True)
    text[0], text[1] = text[1], text[0]  # same bytes, other ids: the quiet kind of damage
    (db / "shard1" / "dict.txt").write_text("".join(text), encoding="utf-8")
    with pytest.raises(InputError, match="sha256") as e:
        preflight(cfg, db, tmp_path / "c1", cuda_info=CPU)
    assert "shard1/dict.txt" in str(e.value)
    # without one: every shard's dict.txt must be shard0's, the one fairseq reads for all of them
    bare = _copy_without_manifest(db, tmp_path / "bare")
    assert shard_names(bare) == ["shard0", "shard1"]
    with pytest.raises(InputError, match=r"shard1/dict\.txt differs from shard0/dict\.txt"):
        preflight(cfg, bare, tmp_path / "c2", cuda_info=CPU)


def test_the_fingerprint_covers_every_shard(sharded, tmp_path):
    bare = _copy_without_manifest(sharded, tmp_path / "bare")
    assert data_fingerprint(bare) == data_fingerprint(sharded)  # hashing the files == the manifest's hashes
    assert preflight(TrainConfig(**TINY), bare, tmp_path / "c", cuda_info=CPU).shards == ["shard0", "shard1"]
    with open(bare / "shard1" / "train.bin", "r+b") as f:
        first = f.read(1)
        f.seek(0)
        f.write(bytes([first[0] ^ 1]))
    assert data_fingerprint(bare) != data_fingerprint(sharded)
