"""finetune stage entry point (the contract: :mod:`koroberta.stage`): the eval harness on the finetune config."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from koroberta.eval.benchmark import run_eval
from koroberta.finetune.config import FinetuneConfig
from koroberta.stage import Manifest, RunOptions, check_inputs

INPUTS = ("model_dir", "train_tsv")
OPTIONAL = ("test_tsv",)


def run(cfg: FinetuneConfig, inputs: Mapping[str, Path | None], out: Path, *, force: bool = False,
        opts: RunOptions = RunOptions()) -> Manifest:
    """Fine-tune the HF export on the train TSV (``cfg.seeds`` runs; a dev split held out of it) and score it on
    the test TSV when given, else on that dev split: ``out/metrics.json`` in the eval format, ``out/model/`` with
    ``cfg.save_model``; returns the manifest. The stage name stays "finetune": the directory's owner."""
    i = check_inputs("finetune", inputs, INPUTS, OPTIONAL)
    return run_eval(cfg, i["model_dir"], i["train_tsv"], out, test=i.get("test_tsv"), force=force, stage="finetune")
