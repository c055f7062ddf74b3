"""``koroberta spm {train,import-legacy}``."""

from __future__ import annotations

import argparse

from koroberta.spm.config import SpmConfig


def _cmd_train(args: argparse.Namespace) -> int:
    from koroberta.artifacts import read_manifest
    from koroberta.spm.train import train_vocab

    cfg = SpmConfig.from_cli(args, getattr(args, "config", None))
    out = train_vocab(cfg, args.train_text, args.out, force=args.force, overwrite=args.overwrite)
    s = (read_manifest(out) or {}).get("stats", {})
    print(f"{out}: {s.get('pieces')} spm pieces, {s.get('fillers')} fillers, final vocab {s.get('final_vocab_size')} "
          f"incl. <mask>")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from koroberta.spm.legacy import import_legacy

    out = import_legacy(args.spm_model, args.dict, args.out, force=args.force, overwrite=args.overwrite)
    print(f"{out}/legacy_map.json written")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("spm", help="train the SentencePiece vocab (ids aligned with fairseq and HF)",
                       description="SentencePiece vocabulary stage.")
    ssub = p.add_subparsers(dest="spm_command", metavar="ACTION", required=True)
    t = ssub.add_parser("train", help="train spm on the train split; writes spm.model, spm.vocab, dict.txt",
                        description="Train SentencePiece on the train split (blank lines skipped) and write dict.txt "
                                    "in the fairseq = spm + 1 layout, padded to a multiple of pad_to incl. <mask>.")
    t.add_argument("--config", help="YAML file; its `spm:` section is the base config")
    t.add_argument("--train-text", required=True, help="train split text (one sentence per line)")
    t.add_argument("--out", required=True, help="output directory")
    t.add_argument("--force", action="store_true", help="retrain even if the output is complete")
    t.add_argument("--overwrite", action="store_true", help="replace an output dir koroberta did not write")
    SpmConfig.add_arguments(t)
    t.set_defaults(func=_cmd_train)
    i = ssub.add_parser("import-legacy", help="map a KoRoBERTa-style spm model + frequency-ordered dict",
                        description="Write legacy_map.json: for every fairseq row of a KoRoBERTa-style model, the spm "
                                    "id/piece it stands for, plus the special-token mapping.")
    i.add_argument("--spm-model", required=True, help="legacy spm .model (BERT-style [PAD] [UNK] [CLS] [SEP] [MASK])")
    i.add_argument("--dict", required=True, help="legacy fairseq dict.txt over spm-id strings")
    i.add_argument("--out", required=True, help="output directory")
    i.add_argument("--force", action="store_true")
    i.add_argument("--overwrite", action="store_true")
    i.set_defaults(func=_cmd_import)
