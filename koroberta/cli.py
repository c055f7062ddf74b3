"""The ``koroberta`` command: one subcommand per stage, plus ``run`` that chains them.

Each stage package has a ``cli.py`` with ``register(subparsers)``; this module only wires them together and turns
:class:`~koroberta.errors.KorobertaError` into a one-line ``error: ...`` and a non-zero exit. Heavy imports (torch,
fairseq, transformers) happen inside the command functions so ``koroberta --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from koroberta import __version__
from koroberta.errors import KorobertaError, output_os_error

STAGE_MODULES = [
    "koroberta.corpus.cli",
    "koroberta.spm.cli",
    "koroberta.preprocess.cli",
    "koroberta.train.cli",
    "koroberta.convert.cli",
    "koroberta.finetune.cli",
    "koroberta.eval.cli",
    "koroberta.pipeline",
]


def build_parser(modules: list[str] = STAGE_MODULES) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="koroberta",
        description="Pretrain a Korean RoBERTa with fairseq and export it to Hugging Face. "
                    "Stages: corpus -> spm -> preprocess -> train -> convert -> finetune; `run` chains them.",
    )
    parser.add_argument("--version", action="version", version=f"koroberta {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in modules:
        importlib.import_module(name).register(sub)
    return parser


class _OwnRecords(logging.Filter):
    """The terminal shows koroberta's own records and other libraries' errors. fairseq's/hydra's INFO chatter and
    Python warnings (deprecations from torch, transformers) go only to the stage log files (see
    :func:`koroberta.pipeline.stage_log`) -- or to the terminal too with ``koroberta -v``."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.startswith("koroberta") or record.levelno >= logging.ERROR


def setup_logging(verbose: bool = False) -> None:
    logging.captureWarnings(True)  # warnings.warn(...) -> the "py.warnings" logger, filtered like the rest
    console = logging.StreamHandler()
    console.setFormatter(logging.Formatter("%(asctime)s | %(levelname)s | %(name)s | %(message)s", "%H:%M:%S"))
    if not verbose:
        console.addFilter(_OwnRecords())
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[console], force=True)


def main(argv: list[str] | None = None, modules: list[str] = STAGE_MODULES) -> int:
    """Run one command; ``modules`` narrows the stages registered (``python -m koroberta.train.cli``)."""
    from koroberta.train.cli import with_default_subcommand

    parser = build_parser(modules)
    args = parser.parse_args(with_default_subcommand(list(sys.argv[1:] if argv is None else argv)))
    setup_logging(args.verbose)
    try:
        rc = args.func(args)
    except KorobertaError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:  # `koroberta ... | head`: before OSError, of which it is a subclass
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:
        # an output location the system refuses outside a StageOutput (an atomic file, a pre-check listing the
        # directory): still the user's disk/mount/permissions, so one line. Any other OSError keeps its traceback.
        err = output_os_error(e)
        if err is None:
            raise
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
