"""corpus stage entry point (the contract: :mod:`koroberta.stage`)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from koroberta.corpus.build import build_corpus
from koroberta.corpus.config import CorpusConfig
from koroberta.stage import Manifest, RunOptions, check_inputs, manifest_of

INPUTS = ("source",)  # a kowiki dump, WikiExtractor output, HF datasets files, or plain text


def run(cfg: CorpusConfig, inputs: Mapping[str, Path | None], out: Path, *, force: bool = False,
        opts: RunOptions = RunOptions()) -> Manifest:
    """extract -> clean -> kss sentence split -> train/valid/test by document, under ``out``; returns the manifest
    of ``out/split`` (``train.txt``, ``valid.txt``, ``test.txt``)."""
    i = check_inputs("corpus", inputs, INPUTS)
    split = build_corpus(cfg, i["source"], out, workers=opts.workers, force=force)
    return manifest_of("corpus", split)
