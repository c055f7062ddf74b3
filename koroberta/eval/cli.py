"""``koroberta eval TASK MODEL_DIR OUT --train FILE [--dev FILE] [--test FILE] [--seeds N] [--model-card]``.

OUT is positional like every stage's output (inputs, then the output); ``--out DIR`` is still accepted, unlisted,
for scripts written before.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from koroberta.errors import ConfigError
from koroberta.eval.config import TASKS, EvalConfig

#: the options only the tsv task takes (the others have fixed columns and labels)
TSV_ONLY = ("text_column", "label_column", "labels")
_EXAMPLES = {
    "nsmc": "koroberta eval nsmc runs/demo/hf runs/eval/nsmc --train ratings_train.txt --test ratings_test.txt",
    "tsv": "koroberta eval tsv MODEL runs/eval/topic --train train.tsv --dev dev.tsv --text-column text "
           "--label-column topic --labels 정치 경제 사회",
    "klue-nli": "koroberta eval klue-nli MODEL runs/eval/klue-nli --train klue-nli-v1.1_train.json "
                "--dev klue-nli-v1.1_dev.json --model-card",
    "kornli": "koroberta eval kornli MODEL runs/eval/kornli --train multinli.train.ko.tsv --dev xnli.dev.ko.tsv "
              "--test xnli.test.ko.tsv",
    "klue-sts": "koroberta eval klue-sts MODEL runs/eval/klue-sts --train klue-sts-v1.1_train.json "
                "--dev klue-sts-v1.1_dev.json",
    "klue-ner": "koroberta eval klue-ner MODEL runs/eval/klue-ner --train klue-ner-v1.1_train.tsv "
                "--dev klue-ner-v1.1_dev.tsv",
}
_REPORTS = {"nsmc": "accuracy, F1", "tsv": "accuracy, F1 (binary: class 1; else macro)",
            "klue-nli": "accuracy, macro-F1", "kornli": "accuracy, macro-F1",
            "klue-sts": "Pearson, Spearman, F1 at 3.0", "klue-ner": "entity-level macro F1, character-level macro F1"}


def refuse_tsv_only(args: argparse.Namespace, command: str, tsv_example: str) -> None:
    """``--labels`` (or a column option) given to a task with fixed ones: say which subcommand takes it, instead of
    argparse's "unrecognized arguments" (the label error of nsmc used to send users there)."""
    given = [n for n in TSV_ONLY if getattr(args, f"fixed_{n}", None) is not None]
    if given:
        opts = " ".join(f"--{n.replace('_', '-')}" for n in given)
        raise ConfigError(f"command-line option {opts}: `{command} {args.task_name}` has fixed columns and labels "
                          f"({TASKS[args.task_name]}); {opts} belongs to the tsv task",
                          fix=f"leave {opts} out, or use the tsv task for a file with other labels: {tsv_example}")


def add_fixed(t: argparse.ArgumentParser) -> None:
    """Hidden --text-column/--label-column/--labels for tasks that have fixed ones (see refuse_tsv_only)."""
    for n in TSV_ONLY:
        t.add_argument(f"--{n.replace('_', '-')}", dest=f"fixed_{n}", nargs="+" if n == "labels" else None,
                       default=None, help=argparse.SUPPRESS)


def print_summary(cfg: EvalConfig, out: str | Path, manifest: dict[str, Any]) -> None:
    """The one JSON line a run prints: task, output, seeds and, per scored split, each metric as "mean ± std"."""
    summary = manifest.get("stats", {}).get("summary", {})
    scored = {split: {k: f"{v['mean']} ± {v['std']}" for k, v in per.items()} for split, per in summary.items()}
    print(json.dumps({"task": cfg.task, "out": str(out), "seeds": cfg.seed_list, **scored}, ensure_ascii=False))


def _output_dir(args: argparse.Namespace) -> str:
    """OUT, given positionally or (as before) with --out: one of them, or both naming the same directory."""
    if args.out is None and args.out_option is None:
        raise ConfigError(f"`koroberta eval {args.task_name}` needs an output directory",
                          fix=f"pass it after MODEL_DIR: `koroberta eval {args.task_name} MODEL_DIR OUT --train FILE`")
    if args.out is not None and args.out_option is not None and Path(args.out) != Path(args.out_option):
        raise ConfigError(f"two output directories: OUT {args.out} and --out {args.out_option}",
                          fix="pass OUT only (--out is its old spelling)")
    return args.out if args.out is not None else args.out_option


def _cmd(args: argparse.Namespace) -> int:
    from koroberta.eval.benchmark import run_eval

    out = _output_dir(args)
    refuse_tsv_only(args, "koroberta eval", "`koroberta eval tsv MODEL_DIR OUT --train FILE --labels neg pos`")
    args.task = args.task_name  # the subcommand decides the task (there is no --task option)
    cfg = EvalConfig.from_cli(args, args.config)
    m = run_eval(cfg, args.model_dir, args.train, out, dev=args.dev, test=args.test, model_card=args.model_card,
                 force=args.force, overwrite=args.overwrite)
    print_summary(cfg, out, m)
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
        t.add_argument("out", nargs="?", metavar="OUT",
                       help="output directory: metrics.json + manifest (and model/ with --save-model)")
        t.add_argument("--out", dest="out_option", metavar="DIR", help=argparse.SUPPRESS)
        t.add_argument("--train", required=True, metavar="FILE", help="training file")
        t.add_argument("--dev", metavar="FILE", help="dev file to score on (default: hold out --dev-fraction of train)")
        t.add_argument("--test", metavar="FILE", help="test file, scored too")
        t.add_argument("--model-card", action="store_true",
                       help="also write the results as a table into MODEL_DIR/README.md (replacing this task's "
                            "earlier table)")
        t.add_argument("--config", help="YAML file; its `eval:` section is used")
        t.add_argument("--force", action="store_true", help="redo even if OUT is complete for the same inputs")
        t.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT")
        EvalConfig.add_arguments(t, exclude=("task",) if name == "tsv" else ("task", *TSV_ONLY))
        if name != "tsv":
            add_fixed(t)
        t.set_defaults(func=_cmd)
