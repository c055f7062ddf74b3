"""finetune stage entry point (the contract: :mod:`koroberta.stage`)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from koroberta.finetune.config import FinetuneConfig
from koroberta.finetune.core import finetune
from koroberta.stage import Manifest, RunOptions, check_inputs

INPUTS = ("model_dir", "train_tsv")
OPTIONAL = ("test_tsv",)


def run(cfg: FinetuneConfig, inputs: Mapping[str, Path | None], out: Path, *, force: bool = False,
        opts: RunOptions = RunOptions()) -> Manifest:
    """Fine-tune the HF export on the train TSV; ``out/metrics.json`` + ``out/model/``; returns the manifest."""
    i = check_inputs("finetune", inputs, INPUTS, OPTIONAL)
    return finetune(cfg, i["model_dir"], i["train_tsv"], out, test_tsv=i.get("test_tsv"), force=force)
