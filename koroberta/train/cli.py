"""``koroberta train``: thin CLI over :func:`koroberta.train.train` and :func:`koroberta.train.report.report`.

Usage::

    koroberta train [run] [CONFIG.yaml] [DATA_BIN SAVE_DIR] [--dry-run] [--restart | --extend] [train options]
    koroberta train report SAVE_DIR [--out DIR] [--gpu NAME] [--peak-tflops X]

``koroberta train run --help`` lists the training options, ``koroberta train report --help`` the report's.

Extra fairseq-train arguments are written as they are, after ``--extra-args``::

    koroberta train CONFIG.yaml DATA_BIN SAVE_DIR --extra-args --max-epoch 5 --no-progress-bar --dry-run

They run up to the next option of ``koroberta train run`` (``--dry-run`` above) or the end, so put DATA_BIN
SAVE_DIR before them; the word right after ``--extra-args`` is fairseq's whatever it is. ``--extra-args=--flag``
(one argument each) works too. In YAML, ``extra_args:`` is a list (``[--max-epoch, "5"]``) or one string
(``"--max-epoch 5"``). Given on the command line, they replace the YAML's.

With a pipeline YAML (one that has ``workdir:``), DATA_BIN and SAVE_DIR default to ``WORKDIR/data-bin`` and
``WORKDIR/checkpoints``, the paths ``koroberta run`` uses.

``--init-from CHECKPOINT`` (``train.init_from``) continues masked-LM pretraining from existing weights: the
``checkpoint.pt`` of ``koroberta import-hf`` or a ``checkpoint_last.pt``, loaded once with a fresh optimizer, lr
schedule and data position; a relaunch resumes from SAVE_DIR/checkpoint_last.pt. Preflight checks that its
vocabulary is the data-bin's and its model the configured one; ``--dry-run`` shows what it starts from.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from koroberta.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    from koroberta.train.config import TrainConfig

    p = sub.add_parser("train", help="pretrain RoBERTa with fairseq-train (preflight, resume); `train report DIR`",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    tsub = p.add_subparsers(dest="train_command", metavar="{run,report}", required=True)
    r = tsub.add_parser("run", help="train (the default: `koroberta train CONFIG ...` = `koroberta train run ...`)",
                        description="Preflight, print the command and effective batch, run fairseq-train (resuming "
                                    "from SAVE_DIR/checkpoint_last.pt), mark the run complete.")
    r.add_argument("paths", nargs="*", metavar="ARG", help="[CONFIG.yaml] [DATA_BIN SAVE_DIR]")
    r.add_argument("--config", metavar="FILE.yaml", help="YAML file; its `train:` section is used")
    r.add_argument("--data-bin", help="fairseq data-bin (from `koroberta preprocess`)")
    r.add_argument("--save-dir", help="checkpoint directory (resumed when it holds checkpoint_last.pt)")
    r.add_argument("--spm-model", help="spm.model to check dict.txt against (default: DATA_BIN/spm.model)")
    r.add_argument("--dry-run", action="store_true", help="preflight and print the command, do not train")
    r.add_argument("--force", action="store_true", help="re-check and relaunch even if SAVE_DIR is complete for this "
                                                        "run (a run at max_update is still not trained further)")
    r.add_argument("--restart", action="store_true",
                   help="SAVE_DIR holds checkpoints of a different run: move them to SAVE_DIR/superseded-N/ and "
                        "train from update 0")
    r.add_argument("--extend", action="store_true",
                   help="max_update was raised on purpose: continue the checkpoints in SAVE_DIR to the new "
                        "max_update (the polynomial LR decay is recomputed for the longer horizon)")
    TrainConfig.add_arguments(r, exclude=("extra_args",))
    # its own option, not the generated one: fairseq flags start with "-", which argparse would take for options
    # of ours; _split_extra_args hands them over one by one as --extra-args=FLAG
    r.add_argument("--extra-args", dest="extra_args", action="extend", nargs="+", default=None, metavar="ARG",
                   help="fairseq-train arguments appended verbatim, written as they are: `--extra-args --max-epoch 5 "
                        "--no-progress-bar`; they run up to the next option of this command or the end (so put "
                        "DATA_BIN SAVE_DIR before them); `--extra-args=--flag` works too; replaces "
                        "train.extra_args of the YAML (default: [])")
    r.set_defaults(func=run)
    rep = tsub.add_parser("report", help="PNG curves (loss, lr, tokens/s, loss scale) and MFU of a training run",
                          description="Read SAVE_DIR/train.log: PNG curves and throughput / MFU.")
    rep.add_argument("save_dir", help="the --save-dir of a `koroberta train` run")
    rep.add_argument("--out", help="PNG directory (default SAVE_DIR/report)")
    rep.add_argument("--gpu", help="GPU name for the peak-FLOPs table (default: the device used)")
    rep.add_argument("--peak-tflops", type=float, help="peak TFLOP/s per device (overrides --gpu)")
    rep.set_defaults(func=report_cmd)


def with_default_subcommand(argv: list[str]) -> list[str]:
    """``koroberta [-v] train CONFIG ...`` (the form every script and the README use) means ``koroberta [-v] train
    run ...``."""
    i = next((k for k, a in enumerate(argv) if not a.startswith("-")), None)  # the command, after global options
    if i is not None and argv[i] == "train" and (len(argv) == i + 1 or argv[i + 1] not in ("run", "report", "-h",
                                                                                            "--help")):
        argv = [*argv[: i + 1], "run", *argv[i + 1:]]
    if i is not None and argv[i] == "train" and argv[i + 1: i + 2] == ["run"]:
        return [*argv[: i + 2], *_split_extra_args(argv[i + 2:])]
    return argv


#: the hook :mod:`koroberta.cli` applies to the command line before parsing; it looks it up by name, so that it
#: never imports this module (which imports koroberta.cli for ``python -m koroberta.train.cli``)
rewrite_argv = with_default_subcommand


def _run_options() -> set[str]:
    """The option strings of `koroberta train run` (where a run of --extra-args values ends)."""
    import dataclasses

    from koroberta.train.config import TrainConfig

    own = {"-h", "--help", "--config", "--data-bin", "--save-dir", "--spm-model", "--dry-run", "--force",
           "--restart", "--extend", "--extra-args"}
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        own |= {flag, "--no-" + flag[2:]}
    return own


def _split_extra_args(args: list[str]) -> list[str]:
    """``--extra-args --max-epoch 5 --dry-run`` -> ``--extra-args=--max-epoch --extra-args=5 --dry-run``: the word
    after --extra-args, and every next one up to an option of ours, becomes one fairseq argument (argparse alone
    would take ``--max-epoch`` for an unknown option of ours and refuse it)."""
    ours = _run_options()
    out: list[str] = []
    k = 0
    while k < len(args):
        a = args[k]
        k += 1
        if a != "--extra-args":
            out.append(a)
            continue
        taken = args[k:k + 1]  # the first word is fairseq's whatever it is (`--extra-args --max-update 9`)
        k += len(taken)
        while k < len(args) and args[k].split("=", 1)[0] not in ours:
            taken.append(args[k])
            k += 1
        out += [f"--extra-args={t}" for t in taken] if taken else [a]  # none: argparse says it needs one
    return out


def report_cmd(args: argparse.Namespace) -> int:
    from koroberta.train.report import report

    r = report(args.save_dir, args.out, gpu=args.gpu, peak_tflops=args.peak_tflops)
    for p in r["plots"]:
        print(f"wrote {p}")
    print(f"updates {r['updates']}; train loss {r['first_train_loss']} -> {r['final_train_loss']}; "
          f"valid loss {r['final_valid_loss']} (bits)")
    if r.get("valid_subsets"):  # a multi-source corpus: each source's own valid documents
        print("valid loss per subset (bits, final / best): " + "; ".join(
            f"{name} {v['final_loss']} / {v['best_loss']}" for name, v in r["valid_subsets"].items()))
    print(f"FLOPs/token {r['flops_per_token'] / 1e9:.4f} GFLOP; mean throughput "
          f"{(r['mean_wps'] or 0):,.0f} tokens/s on {r['world_size']} x {r['device']}")
    if r["mfu"] is None:
        print("MFU: n/a (no peak FLOP/s known for this device; pass --gpu NAME or --peak-tflops X)")
    else:
        print(f"MFU: {r['mfu']:.1%} of {r['peak_flops_per_device'] / 1e12:.0f} TFLOP/s x {r['world_size']}")
    print(json.dumps({k: v for k, v in r.items() if k != "plots"}, ensure_ascii=False))
    return 0


def run(args: argparse.Namespace) -> int:
    from koroberta.config import load_yaml
    from koroberta.train.launch import ExtraArgsRefused, train
    from koroberta.train.config import TrainConfig

    rest = list(args.paths)
    config_path = args.config
    # CONFIG DATA_BIN SAVE_DIR: three paths leave no doubt, and `<(sed ... base.yaml)` is a pipe, never a data-bin
    if rest and (rest[0].endswith((".yaml", ".yml")) or len(rest) == 3 or Path(rest[0]).is_fifo()):
        if config_path:
            raise ConfigError("config given twice (positional and --config)", fix="pass one of them")
        config_path = rest.pop(0)
    data = load_yaml(config_path) if config_path else {}
    section = TrainConfig.section_of(data, config_path) if config_path else {}
    # from_args names the YAML file for a bad key/value in it, and the option for a bad command-line value
    cfg = TrainConfig.from_args(args, base=section, source=config_path)
    if len(rest) not in (0, 2):
        raise ConfigError(f"expected DATA_BIN SAVE_DIR, got {rest}",
                          fix="koroberta train [CONFIG.yaml] DATA_BIN SAVE_DIR")
    data_bin = rest[0] if rest else args.data_bin
    save_dir = rest[1] if rest else args.save_dir
    workdir = data.get("workdir") if isinstance(data, dict) else None
    data_bin = data_bin or (str(Path(workdir) / "data-bin") if workdir else None)
    save_dir = save_dir or (str(Path(workdir) / "checkpoints") if workdir else None)
    if not data_bin or not save_dir:
        raise ConfigError("no data-bin / save-dir given", fix="pass DATA_BIN SAVE_DIR (or --data-bin/--save-dir, or a "
                                                              "pipeline YAML with workdir:)")
    try:
        ckpt = train(cfg, data_bin, save_dir, dry_run=args.dry_run, force=args.force, restart=args.restart,
                     extend=args.extend, spm_model=args.spm_model)
    except ExtraArgsRefused as e:  # name where the refused arguments came from: this command line or the YAML
        if args.extra_args is not None:
            raise ConfigError(f"command-line option --extra-args {' '.join(cfg.extra_args)}: {e.problem}",
                              fix=e.fix.replace("train.extra_args (or --extra-args)", "--extra-args")) from None
        raise ConfigError(f"train.extra_args {cfg.extra_args}: {e.problem}", path=config_path,
                          fix=e.fix.replace("train.extra_args (or --extra-args)",
                                            f"the `train:` section's extra_args of {config_path}")) from None
    if not args.dry_run:
        print(f"checkpoint: {ckpt}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m koroberta.train.cli ...`` = ``koroberta train ...`` without importing the other stages."""
    import sys

    from koroberta.cli import main as koroberta_main

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:  # `python -m koroberta.train.cli train ...` works like `koroberta train ...`
        argv = argv[1:]
    return koroberta_main(["train", *argv], modules=["koroberta.train.cli"])


if __name__ == "__main__":
    raise SystemExit(main())
