"""``koroberta import-hf HF_DIR OUT [--parity-text valid.txt]``."""

from __future__ import annotations

import argparse
import json

from koroberta.importhf.config import ImportHFConfig


def _cmd(args: argparse.Namespace) -> int:
    from koroberta.artifacts import read_manifest
    from koroberta.importhf.build import import_hf

    cfg = ImportHFConfig.from_cli(args, args.config)
    out = import_hf(cfg, args.hf_dir, args.out, parity_text=args.parity_text, force=args.force,
                    overwrite=args.overwrite)
    print(json.dumps((read_manifest(out) or {}).get("stats", {}), ensure_ascii=False))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from koroberta.cli import path_arguments

    p = sub.add_parser("import-hf", help="Hugging Face RoBERTa masked LM -> fairseq checkpoint + vocab (continue "
                                         "pretraining from it)",
                       description="Import a local Hugging Face RobertaForMaskedLM / XLMRobertaForMaskedLM / "
                                   "RobertaPreLayerNormForMaskedLM directory as a fairseq roberta checkpoint "
                                   "(OUT/checkpoint.pt, for `train.init_from`) and a vocab directory whose fairseq "
                                   "ids are the HF tokenizer's ids (OUT: dict.txt + tokenizer/, for preprocess and "
                                   "convert). fairseq's logits are checked against the HF model's.")
    path_arguments(p, _cmd, ("hf_dir", "local HF model directory (config.json, model.safetensors, tokenizer files)"),
                   ("out", "output directory (must be new/empty unless --overwrite)"))
    p.add_argument("--parity-text", help="text file whose first lines are used for the logits check (default: "
                                         "built-in Korean sentences)")
    p.add_argument("--config", metavar="FILE.yaml", help="YAML file; its `importhf:` section is used")
    p.add_argument("--force", action="store_true", help="redo even if OUT is complete for the same inputs")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT")
    ImportHFConfig.add_arguments(p)
