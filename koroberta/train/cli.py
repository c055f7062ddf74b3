"""``koroberta train``: thin CLI over :func:`koroberta.train.train` and :func:`koroberta.train.report.report`.

Usage::

    koroberta train [CONFIG.yaml] [DATA_BIN SAVE_DIR] [--data-bin D] [--save-dir S] [--dry-run] [train options]
    koroberta train report SAVE_DIR [--out DIR] [--gpu NAME] [--peak-tflops X]

With a pipeline YAML (one that has ``workdir:``), DATA_BIN and SAVE_DIR default to ``WORKDIR/data-bin`` and
``WORKDIR/checkpoints``, the paths ``koroberta run`` uses.
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
    p.add_argument("paths", nargs="*", metavar="ARG",
                   help="[CONFIG.yaml] [DATA_BIN SAVE_DIR], or `report SAVE_DIR`")
    p.add_argument("--config", help="YAML file; its `train:` section is used")
    p.add_argument("--data-bin", help="fairseq data-bin (from `koroberta preprocess`)")
    p.add_argument("--save-dir", help="checkpoint directory (resumed when it holds checkpoint_last.pt)")
    p.add_argument("--spm-model", help="spm.model to check dict.txt against (default: DATA_BIN/spm.model)")
    p.add_argument("--dry-run", action="store_true", help="preflight and print the command, do not train")
    p.add_argument("--force", action="store_true", help="run even if SAVE_DIR is complete for this config")
    p.add_argument("--out", help="report: PNG directory (default SAVE_DIR/report)")
    p.add_argument("--gpu", help="report: GPU name for the peak-FLOPs table (default: the device used)")
    p.add_argument("--peak-tflops", type=float, help="report: peak TFLOP/s per device (overrides --gpu)")
    TrainConfig.add_arguments(p)
    p.set_defaults(func=run)


def _report(args: argparse.Namespace, rest: list[str]) -> int:
    from koroberta.train.report import report

    if len(rest) != 1:
        raise ConfigError("usage: koroberta train report SAVE_DIR", fix="pass exactly one save directory")
    r = report(rest[0], args.out, gpu=args.gpu, peak_tflops=args.peak_tflops)
    for p in r["plots"]:
        print(f"wrote {p}")
    print(f"updates {r['updates']}; train loss {r['first_train_loss']} -> {r['final_train_loss']}; "
          f"valid loss {r['final_valid_loss']} (bits)")
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
    from koroberta.train import train
    from koroberta.train.config import TrainConfig

    rest = list(args.paths)
    if rest and rest[0] == "report":
        return _report(args, rest[1:])
    config_path = args.config
    if rest and rest[0].endswith((".yaml", ".yml")):
        if config_path:
            raise ConfigError("config given twice (positional and --config)", fix="pass one of them")
        config_path = rest.pop(0)
    data = load_yaml(config_path) if config_path else {}
    section = TrainConfig.section_of(data, config_path) if config_path else {}
    try:
        cfg = TrainConfig.from_args(args, base=section)
    except ConfigError as e:
        raise ConfigError(f"{config_path or 'command line'}: {e}") from None
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
    ckpt = train(cfg, data_bin, save_dir, dry_run=args.dry_run, force=args.force, spm_model=args.spm_model)
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
