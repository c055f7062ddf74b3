"""train stage entry point (the contract: :mod:`koroberta.stage`)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from koroberta.artifacts import read_manifest
from koroberta.stage import Manifest, RunOptions, check_inputs
from koroberta.train import train
from koroberta.train.config import TrainConfig

INPUTS = ("data_bin",)
OPTIONAL = ("spm_model",)  # checked against the data-bin's dict.txt by preflight


def run(cfg: TrainConfig, inputs: Mapping[str, Path | None], out: Path, *, force: bool = False,
        opts: RunOptions = RunOptions()) -> Manifest:
    """fairseq-train into ``out`` (resumable; ``out/checkpoint_last.pt`` at max_update); returns the manifest."""
    i = check_inputs("train", inputs, INPUTS, OPTIONAL)
    train(cfg, i["data_bin"], out, force=force, restart=opts.restart, extend=opts.extend,
          spm_model=i.get("spm_model"))
    return read_manifest(out) or {}
