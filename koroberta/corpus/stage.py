"""corpus stage entry point (the contract: :mod:`koroberta.stage`)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from koroberta.corpus.build import build_corpus, build_corpus_sources
from koroberta.corpus.config import CorpusConfig
from koroberta.stage import Manifest, RunOptions, check_inputs, manifest_of

INPUTS = ("source",)  # a kowiki dump, WikiExtractor output, HF datasets files, NSMC-style TSV, or plain text
# several sources (cfg.sources): "source.<name>" each, and "decontaminate.<i>" the evaluation files, in order
PREFIXES = ("source", "decontaminate")


def run(cfg: CorpusConfig, inputs: Mapping[str, Path | None], out: Path, *, force: bool = False,
        opts: RunOptions = RunOptions()) -> Manifest:
    """extract -> clean -> kss sentence split -> train/valid/test by document, under ``out``; returns the manifest
    of ``out/split`` (``train.txt``, ``valid.txt``, ``test.txt``)."""
    i = check_inputs("corpus", inputs, INPUTS, prefixes=PREFIXES)
    if cfg.sources:
        paths = {s["name"]: i[f"source.{s['name']}"] for s in cfg.sources}
        decon = [i[k] for k in sorted((k for k in i if k.startswith("decontaminate.")), key=lambda k: int(k[14:]))]
        split = build_corpus_sources(cfg, paths, out, decontaminate=decon, workers=opts.workers, force=force)
    else:
        split = build_corpus(cfg, i["source"], out, workers=opts.workers, force=force)
    return manifest_of("corpus", split)
