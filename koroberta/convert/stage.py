"""convert stage entry point (the contract: :mod:`koroberta.stage`)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from koroberta.convert.config import ConvertConfig
from koroberta.convert.export import convert
from koroberta.stage import Manifest, RunOptions, check_inputs

INPUTS = ("checkpoint", "vocab_dir")
OPTIONAL = ("parity_text",)  # lines whose HF token ids must equal fairseq's (the valid split)


def run(cfg: ConvertConfig, inputs: Mapping[str, Path | None], out: Path, *, force: bool = False,
        opts: RunOptions = RunOptions()) -> Manifest:
    """HF ``RobertaForMaskedLM`` + fast tokenizer in ``out``, parity-checked against fairseq; returns the manifest."""
    i = check_inputs("convert", inputs, INPUTS, OPTIONAL)
    return convert(cfg, i["checkpoint"], i["vocab_dir"], out, parity_text=i.get("parity_text"), force=force)
