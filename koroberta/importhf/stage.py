"""import-hf stage entry point (the contract: :mod:`koroberta.stage`)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from koroberta.importhf.build import import_hf
from koroberta.importhf.config import ImportHFConfig
from koroberta.stage import Manifest, RunOptions, check_inputs, manifest_of

INPUTS = ("hf_dir",)  # a local Hugging Face model directory (config.json, model.safetensors, tokenizer files)
OPTIONAL = ("parity_text",)


def run(cfg: ImportHFConfig, inputs: Mapping[str, Path | None], out: Path, *, force: bool = False,
        opts: RunOptions = RunOptions()) -> Manifest:
    """``out/checkpoint.pt`` (fairseq) + ``out/dict.txt`` + ``out/tokenizer/``; returns the manifest."""
    i = check_inputs("import-hf", inputs, INPUTS, OPTIONAL)
    return manifest_of("import-hf", import_hf(cfg, i["hf_dir"], out, parity_text=i.get("parity_text"), force=force))
