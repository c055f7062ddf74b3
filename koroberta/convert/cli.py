"""``koroberta convert CHECKPOINT VOCAB_DIR OUT [--parity-text valid.txt]``.

VOCAB_DIR was an option once: ``koroberta convert CHECKPOINT OUT --vocab-dir DIR`` still works (hidden from
--help, :func:`koroberta.cli.path_arguments`).
"""

from __future__ import annotations

import argparse
import json

from koroberta.convert.config import ConvertConfig


def _cmd(args: argparse.Namespace) -> int:
    from koroberta.convert.export import convert

    cfg = ConvertConfig.from_cli(args, args.config)
    m = convert(cfg, args.checkpoint, args.vocab_dir, args.out, parity_text=args.parity_text, force=args.force,
                overwrite=args.overwrite)
    print(json.dumps(m.get("stats", {}).get("parity", {}), ensure_ascii=False))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from koroberta.cli import path_arguments

    p = sub.add_parser("convert", help="fairseq checkpoint -> Hugging Face RobertaForMaskedLM + fast tokenizer",
                       description="Export a fairseq RoBERTa checkpoint (with its spm.model + dict.txt) to a Hugging "
                                   "Face directory, checking logits and token ids against fairseq.")
    path_arguments(p, _cmd, ("checkpoint", "fairseq checkpoint, e.g. runs/x/checkpoints/checkpoint_last.pt"),
                   ("vocab_dir", "directory with spm.model + dict.txt (koroberta spm output or a legacy KoRoBERTa "
                                 "dict)", "--vocab-dir"),
                   ("out", "output directory (must be new/empty unless --overwrite)"))
    p.add_argument("--parity-text", help="text file (e.g. the valid split) for the token-id / logits parity check")
    p.add_argument("--config", metavar="FILE.yaml", help="YAML file; its `convert:` section is used")
    p.add_argument("--force", action="store_true", help="redo even if OUT is complete for the same inputs")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT")
    ConvertConfig.add_arguments(p)
