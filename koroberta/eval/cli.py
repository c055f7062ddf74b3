"""``koroberta eval TASK MODEL_DIR --train FILE [--dev FILE] [--test FILE] --out DIR [--seeds N] [--model-card]``."""

from __future__ import annotations

import argparse
import json

from koroberta.errors import ConfigError
from koroberta.eval.config import TASKS, EvalConfig

_TSV_ONLY = ("text_column", "label_column", "labels")
_EXAMPLES = {
    "nsmc": "koroberta eval nsmc runs/demo/hf --train ratings_train.txt --test ratings_test.txt --out runs/eval/nsmc",
    "tsv": "koroberta eval tsv MODEL --train train.tsv --dev dev.tsv --text-column text --label-column topic "
           "--labels 정치 경제 사회 --out runs/eval/topic",
    "klue-nli": "koroberta eval klue-nli MODEL --train klue-nli-v1.1_train.json --dev klue-nli-v1.1_dev.json "
                "--out runs/eval/klue-nli --model-card",
    "kornli": "koroberta eval kornli MODEL --train multinli.train.ko.tsv --dev xnli.dev.ko.tsv "
              "--test xnli.test.ko.tsv --out runs/eval/kornli",
    "klue-sts": "koroberta eval klue-sts MODEL --train klue-sts-v1.1_train.json --dev klue-sts-v1.1_dev.json "
                "--out runs/eval/klue-sts",
    "klue-ner": "koroberta eval klue-ner MODEL --train klue-ner-v1.1_train.tsv --dev klue-ner-v1.1_dev.tsv "
                "--out runs/eval/klue-ner",
}
_REPORTS = {"nsmc": "accuracy, F1", "tsv": "accuracy, F1 (binary: class 1; else macro)",
            "klue-nli": "accuracy, macro-F1", "kornli": "accuracy, macro-F1",
            "klue-sts": "Pearson, Spearman, F1 at 3.0", "klue-ner": "entity-level macro F1, character-level macro F1"}


def _refuse_tsv_only(args: argparse.Namespace, command: str, tsv_example: str) -> None:
    """``--labels`` (or a column option) given to a task with fixed ones: say which subcommand takes it, instead of
    argparse's "unrecognized arguments" (the label error of nsmc used to send users there)."""
    given = [n for n in _TSV_ONLY if getattr(args, f"fixed_{n}", None) is not None]
    if given:
        opts = " ".join(f"--{n.replace('_', '-')}" for n in given)
        raise ConfigError(f"command-line option {opts}: `{command} {args.task_name}` has fixed columns and labels "
                          f"({TASKS[args.task_name]}); {opts} belongs to the tsv task",
                          fix=f"leave {opts} out, or use the tsv task for a file with other labels: {tsv_example}")


def _add_fixed(t: argparse.ArgumentParser) -> None:
    """Hidden --text-column/--label-column/--labels for tasks that have fixed ones (see _refuse_tsv_only)."""
    for n in _TSV_ONLY:
        t.add_argument(f"--{n.replace('_', '-')}", dest=f"fixed_{n}", nargs="+" if n == "labels" else None,
                       default=None, help=argparse.SUPPRESS)


def _cmd(args: argparse.Namespace) -> int:
    from koroberta.eval.benchmark import run_eval

    _refuse_tsv_only(args, "koroberta eval", "`koroberta eval tsv MODEL_DIR --train FILE --labels neg pos --out DIR`")
    args.task = args.task_name  # the subcommand decides the task (there is no --task option)
    cfg = EvalConfig.from_cli(args, args.config)
    m = run_eval(cfg, args.model_dir, args.train, args.out, dev=args.dev, test=args.test, model_card=args.model_card,
                 force=args.force, overwrite=args.overwrite)
    summary = m.get("stats", {}).get("summary", {})
    print(json.dumps({"task": cfg.task, "out": str(args.out), "seeds": cfg.seed_list,
                      **{split: {k: f"{v['mean']} ± {v['std']}" for k, v in per.items()} for split, per in summary.items()}},
                     ensure_ascii=False))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score the HF export on a Korean benchmark (NSMC, KLUE-NLI/STS/NER, KorNLI) "
                                    "from local files, N seeds, mean ± std",
                       description="Fine-tune the exported model once per seed on a benchmark's train file and score "
                                   "it on the dev (and test) file; writes OUT/metrics.json and, with --model-card, a "
                                   "table into MODEL_DIR/README.md. Nothing is downloaded: pass the files you have.")
    tasks = p.add_subparsers(dest="task_name", metavar="TASK", required=True)
    for name, layout in TASKS.items():
        t = tasks.add_parser(name, help=layout, formatter_class=argparse.RawDescriptionHelpFormatter,
                             description=f"{layout}.\nReports: {_REPORTS[name]} on dev (and test), mean ± std over "
                                         f"--seeds runs.\n\nexample:\n  {_EXAMPLES[name]}")
        t.add_argument("model_dir", help="HF directory written by `koroberta convert`")
        t.add_argument("--train", required=True, metavar="FILE", help="training file")
        t.add_argument("--dev", metavar="FILE", help="dev file to score on (default: hold out --dev-fraction of train)")
        t.add_argument("--test", metavar="FILE", help="test file, scored too")
        t.add_argument("--out", required=True, metavar="DIR", help="output directory: metrics.json + manifest")
        t.add_argument("--model-card", action="store_true",
                       help="also write the results as a table into MODEL_DIR/README.md (replacing this task's "
                            "earlier table)")
        t.add_argument("--config", help="YAML file; its `eval:` section is used")
        t.add_argument("--force", action="store_true", help="redo even if OUT is complete for the same inputs")
        t.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT")
        EvalConfig.add_arguments(t, exclude=("task",) if name == "tsv" else ("task", *_TSV_ONLY))
        if name != "tsv":
            _add_fixed(t)
        t.set_defaults(func=_cmd)
