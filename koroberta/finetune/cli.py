"""``koroberta finetune nsmc|tsv MODEL_DIR TRAIN_TSV OUT [--test-tsv FILE]``."""

from __future__ import annotations

import argparse
import json

from koroberta.finetune.config import FinetuneConfig

_NSMC_FIXED = ("task", "text_column", "label_column", "labels")


def _cmd(args: argparse.Namespace) -> int:
    from koroberta.eval.cli import _refuse_tsv_only
    from koroberta.finetune import finetune

    _refuse_tsv_only(args, "koroberta finetune", "`koroberta finetune tsv MODEL_DIR TRAIN_TSV OUT --labels neg pos`")
    args.task = args.task_name  # the subcommand decides the task (there is no --task option)
    cfg = FinetuneConfig.from_cli(args, args.config)
    m = finetune(cfg, args.model_dir, args.train_tsv, args.out, test_tsv=args.test_tsv, force=args.force,
                 overwrite=args.overwrite)
    st = m.get("stats", {})
    print(json.dumps({k: st.get(k) for k in ("eval_split", "accuracy", "f1", "n_train", "n_dev", "n_test")}))
    return 0


def _common(p: argparse.ArgumentParser, exclude: tuple[str, ...]) -> None:
    p.add_argument("model_dir", help="HF directory written by `koroberta convert`")
    p.add_argument("train_tsv", help="training TSV (header line; a dev split is held out of it)")
    p.add_argument("out", help="output directory: model/ + metrics.json")
    p.add_argument("--test-tsv", help="held-out TSV to report metrics on (else: the dev split)")
    p.add_argument("--config", help="YAML file; its `finetune:` section is used")
    p.add_argument("--force", action="store_true", help="redo even if OUT is complete for the same inputs")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT")
    FinetuneConfig.add_arguments(p, exclude=exclude)
    p.set_defaults(func=_cmd)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="fine-tune the HF export for sentence classification (NSMC or any TSV)")
    tasks = p.add_subparsers(dest="task_name", metavar="TASK", required=True)
    nsmc = tasks.add_parser("nsmc", help="NSMC format: id<TAB>document<TAB>label, labels 0/1")
    _common(nsmc, exclude=_NSMC_FIXED)
    from koroberta.eval.cli import _add_fixed

    _add_fixed(nsmc)  # --labels etc. answered with the subcommand that takes them
    _common(tasks.add_parser("tsv", help="any TSV: choose --text-column/--label-column/--labels"), exclude=("task",))
