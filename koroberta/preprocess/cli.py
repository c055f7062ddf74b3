"""``koroberta preprocess run SPLIT_DIR VOCAB_DIR OUT``, ``preprocess encode SPM_MODEL INPUT OUTPUT``,
``preprocess binarize ENCODED_DIR VOCAB_DIR OUT``. VOCAB_DIR (and encode's SPM_MODEL) may be an imported HF vocab dir
(``koroberta import-hf``).

encode's SPM_MODEL was an option once: ``--spm-model MODEL INPUT OUTPUT`` still works (hidden from --help,
:func:`koroberta.cli.path_arguments`).
"""

from __future__ import annotations

import argparse

from koroberta.config import available_cpus
from koroberta.preprocess.config import PreprocessConfig


def _cfg(args: argparse.Namespace) -> PreprocessConfig:
    return PreprocessConfig.from_cli(args, getattr(args, "config", None))


def _workers(args: argparse.Namespace) -> int:
    return args.workers or available_cpus()


def _cmd_run(args: argparse.Namespace) -> int:
    from koroberta.artifacts import read_manifest
    from koroberta.preprocess.build import preprocess

    out = preprocess(_cfg(args), args.split_dir, args.vocab_dir, args.out, workers=_workers(args), force=args.force,
                     overwrite=args.overwrite, progress=not args.no_progress)
    s = (read_manifest(out) or {}).get("stats", {})
    print(f"{out}: tokens {s.get('tokens')}, documents {s.get('documents')}, unk rate {s.get('unk_rate')}")
    if s.get("sources"):  # a multi-source corpus: its validation subsets and each source's share of train
        from koroberta.preprocess.per_source import describe_shares

        print(f"validation subsets: {', '.join(s.get('valid_subsets', ['valid']))}"
              + "".join(f"; {n}: no valid documents, no subset" for n, x in s["sources"].items()
                        if not x.get("valid_subset")))
        shares = {n: x for n, x in s["sources"].items() if x.get("train_tokens") is not None}
        print(f"train tokens per source: {describe_shares(shares)}" if len(shares) == len(s["sources"])
              else "train tokens per source: not derived (see the log)")
    return 0


def _cmd_encode(args: argparse.Namespace) -> int:
    from koroberta.preprocess.build import encode_file

    st = encode_file(_cfg(args), args.spm_model, args.input, args.output, workers=_workers(args),
                     progress=not args.no_progress)
    d = st.to_dict()
    print(f"{args.output}: {d['lines']} lines, {d['pieces']} pieces, {d['pieces_per_line']} pieces/line, unk rate "
          f"{d['unk_rate']}, {d['long_lines']} lines over max_line_tokens, repairs {d['repairs']}")
    return 0


def _cmd_binarize(args: argparse.Namespace) -> int:
    from koroberta.artifacts import read_manifest
    from koroberta.preprocess.build import binarize

    out = binarize(args.encoded_dir, args.vocab_dir, args.out, workers=_workers(args), force=args.force,
                   overwrite=args.overwrite)
    print(f"{out}: tokens {(read_manifest(out) or {}).get('stats', {}).get('tokens')}")
    return 0


def _common(p: argparse.ArgumentParser, *, progress: bool = True) -> None:
    p.add_argument("--workers", type=int, default=0,
                   help="threads / fairseq workers (default: 0 = the CPUs this process may use: affinity mask, "
                        "SLURM_CPUS_PER_TASK)")
    if progress:
        p.add_argument("--no-progress", action="store_true", help="no progress bar")


def register(sub: argparse._SubParsersAction) -> None:
    from koroberta.cli import path_arguments

    p = sub.add_parser("preprocess", help="encode with spm (or an imported HF tokenizer) and binarize into a fairseq "
                                          "data-bin",
                       description="Split text -> spm or an imported HF tokenizer -> fairseq mmap data-bin.")
    ps = p.add_subparsers(dest="preprocess_command", metavar="ACTION", required=True)
    r = ps.add_parser("run", help="split dir + vocab dir -> complete data-bin (what `koroberta run` calls)")
    r.add_argument("split_dir", metavar="SPLIT_DIR", help="directory with train.txt, valid.txt, test.txt")
    r.add_argument("vocab_dir", metavar="VOCAB_DIR", help="output of `koroberta spm train` (spm.model, dict.txt) or "
                                                          "of `koroberta import-hf` (tokenizer/, dict.txt)")
    r.add_argument("out", metavar="OUT", help="data-bin output directory")
    r.add_argument("--config", metavar="FILE.yaml", help="YAML file; its `preprocess:` section is the base config")
    r.add_argument("--force", action="store_true", help="redo it even if OUT is complete for this config and inputs")
    r.add_argument("--overwrite", action="store_true", help="replace an OUT holding files koroberta did not write")
    _common(r)
    PreprocessConfig.add_arguments(r)
    r.set_defaults(func=_cmd_run)
    e = ps.add_parser("encode", help="text -> piece text (blank lines kept, order preserved)")
    path_arguments(e, _cmd_encode, ("spm_model", "the spm.model to encode with, or an imported vocab dir "
                                                 "(`koroberta import-hf`)", "--spm-model"),
                   ("input", "text file: one sentence per line, blank line between documents"),
                   ("output", "piece-text file to write (atomically)"))
    e.add_argument("--config", metavar="FILE.yaml", help="YAML file; its `preprocess:` section is the base config")
    _common(e)
    PreprocessConfig.add_arguments(e, exclude=("method", "keep_encoded", "shards"))  # one file in, one file out
    b = ps.add_parser("binarize", help="{train,valid,test}.spm piece text -> data-bin with fairseq-preprocess")
    b.add_argument("encoded_dir", metavar="ENCODED_DIR", help="directory with train.spm (valid.spm, test.spm optional)")
    b.add_argument("vocab_dir", metavar="VOCAB_DIR",
                   help="output of `koroberta spm train` (its dict.txt must belong to its spm.model) or of "
                        "`koroberta import-hf`")
    b.add_argument("out", metavar="OUT", help="data-bin output directory")
    b.add_argument("--force", action="store_true", help="redo it even if OUT is complete for these inputs")
    b.add_argument("--overwrite", action="store_true", help="replace an OUT holding files koroberta did not write")
    _common(b, progress=False)
    b.set_defaults(func=_cmd_binarize)
