"""``koroberta spm train TRAIN_TEXT OUT`` and ``koroberta spm import-legacy SPM_MODEL DICT OUT``.

The paths were options once (``--train-text``, ``--spm-model``, ``--dict``, ``--out``); those spellings still work,
hidden from --help (:func:`koroberta.cli.path_arguments`).
"""

from __future__ import annotations

import argparse

from koroberta.spm.config import SpmConfig


def _cmd_train(args: argparse.Namespace) -> int:
    from koroberta.artifacts import read_manifest
    from koroberta.spm.train import train_vocab

    config = getattr(args, "config", None)
    cfg = SpmConfig.from_cli(args, config)
    if config and cfg.user_symbols is None:
        # a run config with `sources:`: the same user symbols `koroberta run` gives this stage (the PII
        # placeholders of a profile that replaces PII), so both build the same vocabulary
        from koroberta.config import load_yaml

        if load_yaml(config).get("sources"):
            from koroberta.pipeline import PipelineConfig

            symbols = PipelineConfig.load(config).spm.user_symbols
            cfg = SpmConfig.from_dict({**cfg.to_dict(), "user_symbols": symbols}, source=str(config))
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
    from koroberta.cli import path_arguments

    p = sub.add_parser("spm", help="train the SentencePiece vocab (ids aligned with fairseq and HF)",
                       description="SentencePiece vocabulary stage.")
    ssub = p.add_subparsers(dest="spm_command", metavar="ACTION", required=True)
    t = ssub.add_parser("train", help="train spm on the train split; writes spm.model, spm.vocab, dict.txt",
                        description="Train SentencePiece on the train split (blank lines skipped) and write dict.txt "
                                    "in the fairseq = spm + 1 layout, padded to a multiple of pad_to incl. <mask>.")
    path_arguments(t, _cmd_train, ("train_text", "train split text (one sentence per line)", "--train-text"),
                   ("out", "output directory", "--out"))
    t.add_argument("--config", metavar="FILE.yaml", help="YAML file; its `spm:` section is the base config")
    t.add_argument("--force", action="store_true", help="retrain even if the output is complete")
    t.add_argument("--overwrite", action="store_true", help="replace an output dir koroberta did not write")
    SpmConfig.add_arguments(t)
    i = ssub.add_parser("import-legacy", help="map a KoRoBERTa-style spm model + frequency-ordered dict",
                        description="Write legacy_map.json: for every fairseq row of a KoRoBERTa-style model, the spm "
                                    "id/piece it stands for, plus the special-token mapping.")
    path_arguments(i, _cmd_import,
                   ("spm_model", "legacy spm .model (BERT-style [PAD] [UNK] [CLS] [SEP] [MASK])", "--spm-model"),
                   ("dict", "legacy fairseq dict.txt over spm-id strings", "--dict"),
                   ("out", "output directory", "--out"))
    i.add_argument("--force", action="store_true", help="redo it even if the output is complete")
    i.add_argument("--overwrite", action="store_true", help="replace an output dir koroberta did not write")
