"""``koroberta convert CHECKPOINT OUT --vocab-dir DIR [--parity-text valid.txt]``."""

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
    p = sub.add_parser("convert", help="fairseq checkpoint -> Hugging Face RobertaForMaskedLM + fast tokenizer",
                       description="Export a fairseq RoBERTa checkpoint (with its spm.model + dict.txt) to a Hugging "
                                   "Face directory, checking logits and token ids against fairseq.")
    p.add_argument("checkpoint", help="fairseq checkpoint, e.g. runs/x/checkpoints/checkpoint_last.pt")
    p.add_argument("out", help="output directory (must be new/empty unless --overwrite)")
    p.add_argument("--vocab-dir", required=True, help="directory with spm.model + dict.txt (koroberta spm output "
                                                      "or a legacy KoRoBERTa dict)")
    p.add_argument("--parity-text", help="text file (e.g. the valid split) for the token-id / logits parity check")
    p.add_argument("--config", help="YAML file; its `convert:` section is used")
    p.add_argument("--force", action="store_true", help="redo even if OUT is complete for the same inputs")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT")
    ConvertConfig.add_arguments(p)
    p.set_defaults(func=_cmd)
