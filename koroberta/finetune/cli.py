"""``koroberta finetune nsmc|tsv MODEL_DIR TRAIN_TSV OUT [--test-tsv FILE]``: the pipeline's finetune step by hand.

The same run as ``koroberta eval nsmc|tsv`` with the ``finetune:`` section's defaults (one seed, the model kept in
OUT/model/) and the stage name "finetune", so OUT is interchangeable with a run's ``finetune-nsmc/``.
"""

from __future__ import annotations

import argparse

from koroberta.eval.cli import TSV_ONLY, add_fixed, print_summary, refuse_tsv_only
from koroberta.finetune.config import FinetuneConfig


def _cmd(args: argparse.Namespace) -> int:
    from koroberta.eval.benchmark import run_eval

    refuse_tsv_only(args, "koroberta finetune", "`koroberta finetune tsv MODEL_DIR TRAIN_TSV OUT --labels neg pos`")
    args.task = args.task_name  # the subcommand decides the task (there is no --task option)
    cfg = FinetuneConfig.from_cli(args, args.config)
    m = run_eval(cfg, args.model_dir, args.train_tsv, args.out, test=args.test_tsv, force=args.force,
                 overwrite=args.overwrite, stage="finetune")
    print_summary(cfg, args.out, m)
    return 0


def _common(p: argparse.ArgumentParser, exclude: tuple[str, ...]) -> None:
    p.add_argument("model_dir", help="HF directory written by `koroberta convert`")
    p.add_argument("train_tsv", help="training TSV (header line; a dev split is held out of it)")
    p.add_argument("out", help="output directory: metrics.json (the eval format) + model/")
    p.add_argument("--test-tsv", help="held-out TSV to report metrics on too (else: the dev split only)")
    p.add_argument("--config", help="YAML file; its `finetune:` section is used")
    p.add_argument("--force", action="store_true", help="redo even if OUT is complete for the same inputs")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT")
    FinetuneConfig.add_arguments(p, exclude=exclude)
    p.set_defaults(func=_cmd)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="fine-tune the HF export for sentence classification (NSMC or any TSV): "
                                        "`koroberta eval nsmc|tsv` with the finetune step's defaults, model kept")
    tasks = p.add_subparsers(dest="task_name", metavar="TASK", required=True)
    nsmc = tasks.add_parser("nsmc", help="NSMC format: id<TAB>document<TAB>label, labels 0/1")
    _common(nsmc, exclude=("task", *TSV_ONLY))
    add_fixed(nsmc)  # --labels etc. answered with the subcommand that takes them
    _common(tasks.add_parser("tsv", help="any TSV: choose --text-column/--label-column/--labels"), exclude=("task",))
