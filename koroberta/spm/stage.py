"""spm stage entry point (the contract: :mod:`koroberta.stage`)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from koroberta.spm.config import SpmConfig
from koroberta.spm.train import train_vocab
from koroberta.stage import Manifest, RunOptions, check_inputs, manifest_of

INPUTS = ("train_text",)  # the corpus stage's split/train.txt


def run(cfg: SpmConfig, inputs: Mapping[str, Path | None], out: Path, *, force: bool = False,
        opts: RunOptions = RunOptions()) -> Manifest:
    """``out/spm.model`` + ``out/dict.txt`` (fairseq id = spm id + 1); returns the manifest."""
    i = check_inputs("spm", inputs, INPUTS)
    return manifest_of("spm", train_vocab(cfg, i["train_text"], out, force=force))
