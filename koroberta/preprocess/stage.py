"""preprocess stage entry point (the contract: :mod:`koroberta.stage`)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from koroberta.preprocess.build import preprocess
from koroberta.preprocess.config import PreprocessConfig
from koroberta.stage import Manifest, RunOptions, check_inputs, manifest_of

INPUTS = ("split_dir", "vocab_dir")  # the corpus stage's split/ and the spm stage's output


def run(cfg: PreprocessConfig, inputs: Mapping[str, Path | None], out: Path, *, force: bool = False,
        opts: RunOptions = RunOptions()) -> Manifest:
    """fairseq data-bin (``{train,valid,test}.{bin,idx}``, ``dict.txt``; a multi-source split adds
    ``valid_<name>.{bin,idx}`` per source) in ``out``; returns the manifest."""
    i = check_inputs("preprocess", inputs, INPUTS)
    return manifest_of("preprocess", preprocess(cfg, i["split_dir"], i["vocab_dir"], out, workers=opts.workers,
                                                force=force))
