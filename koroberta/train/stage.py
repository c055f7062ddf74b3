"""train stage entry point (the contract: :mod:`koroberta.stage`)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from koroberta.stage import Manifest, RunOptions, check_inputs, manifest_of
from koroberta.train.config import TrainConfig, TrainOptions
from koroberta.train.launch import train

INPUTS = ("data_bin",)
OPTIONAL = ("spm_model",)  # checked against the data-bin's dict.txt by preflight


def run(cfg: TrainConfig, inputs: Mapping[str, Path | None], out: Path, *, force: bool = False,
        opts: RunOptions = TrainOptions()) -> Manifest:
    """fairseq-train into ``out`` (resumable; ``out/checkpoint_last.pt`` at max_update); returns the manifest."""
    i = check_inputs("train", inputs, INPUTS, OPTIONAL)
    # restart/extend: TrainOptions of `koroberta run --restart/--extend`; a plain RunOptions means neither
    train(cfg, i["data_bin"], out, force=force, restart=getattr(opts, "restart", False),
          extend=getattr(opts, "extend", False), spm_model=i.get("spm_model"))
    return manifest_of("train", out)
