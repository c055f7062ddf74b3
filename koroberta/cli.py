"""The ``koroberta`` command: one subcommand per stage, plus ``run`` that chains them.

Each stage package has a ``cli.py`` with ``register(subparsers)`` and, optionally, ``rewrite_argv(argv)`` (applied
to the command line before parsing: ``koroberta train CONFIG`` = ``koroberta train run CONFIG``). This module finds
them by name (:data:`STAGE_MODULES`) and imports none of them itself, so a stage module may import it
(:func:`path_arguments`; ``python -m koroberta.train.cli``) without an import cycle (``tests/test_cli.py``). It turns
:class:`~koroberta.errors.KorobertaError` into a one-line ``error: ...`` and a non-zero exit. Heavy imports (torch,
fairseq, transformers) happen inside the command functions so ``koroberta --help`` stays instant.

The command-line convention every stage follows (README, "Command-line conventions"): ``koroberta STAGE [STEP]
INPUT... OUT [--config FILE.yaml] [--<field> VALUE ...]``; :func:`path_arguments` gives a command its positional
paths.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import logging
import os
import sys
from pathlib import Path
from typing import Callable

from koroberta import __version__
from koroberta.errors import ConfigError, KorobertaError, output_os_error

STAGE_MODULES = [
    "koroberta.corpus.cli",
    "koroberta.spm.cli",
    "koroberta.preprocess.cli",
    "koroberta.train.cli",
    "koroberta.convert.cli",
    "koroberta.importhf.cli",
    "koroberta.finetune.cli",
    "koroberta.eval.cli",
    "koroberta.pipeline",
]


def build_parser(modules: list[str] = STAGE_MODULES) -> argparse.ArgumentParser:
    return _build(modules)[0]


def _build(modules: list[str]) -> tuple[argparse.ArgumentParser, list[Callable[[list[str]], list[str]]]]:
    """The parser, and the ``rewrite_argv`` hooks of the stage modules that have one."""
    parser = argparse.ArgumentParser(
        prog="koroberta",
        description="Pretrain a Korean RoBERTa with fairseq and export it to Hugging Face. "
                    "Stages: corpus -> spm -> preprocess -> train -> convert -> finetune; `run` chains them.",
    )
    parser.add_argument("--version", action="version", version=f"koroberta {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    hooks = []
    for name in modules:
        module = importlib.import_module(name)
        module.register(sub)
        if hasattr(module, "rewrite_argv"):
            hooks.append(module.rewrite_argv)
    return parser, hooks


def path_arguments(parser: argparse.ArgumentParser, func: Callable[[argparse.Namespace], int],
                   *paths: tuple[str, str] | tuple[str, str, str]) -> None:
    """Give ``parser`` its positional paths -- the files the command reads, then what it writes -- and ``func`` as
    its command, called with ``args.<dest>`` set for every path.

    ``paths``: ``(dest, help)``, or ``(dest, help, "--option")`` for a path that was an option before it became
    positional: the option is still accepted, hidden from --help, so that users' scripts keep working
    (``spm train --train-text T --out O``, and mixed, ``convert CHECKPOINT OUT --vocab-dir DIR``).
    """
    for dest, help_, *old in paths:
        # required=False, or argparse refuses the old all-options spelling before func can look at it. Not
        # nargs="?": argparse would consume an optional positional as empty at the first option, so
        # `spm train TEXT --vocab-size 8000 OUT` would fail; a one-value positional waits for its value.
        parser.add_argument(dest, metavar=dest.upper(), help=help_).required = False
        if old:
            parser.add_argument(old[0], dest=f"{dest}_option", metavar=dest.upper(), help=argparse.SUPPRESS)
    specs = tuple((dest, old[0] if old else None) for dest, _, *old in paths)
    prog = parser.prog

    @functools.wraps(func)
    def command(args: argparse.Namespace) -> int:
        _resolve_paths(args, specs, prog)
        return func(args)

    parser.set_defaults(func=command)


def _resolve_paths(args: argparse.Namespace, specs: tuple[tuple[str, str | None], ...], prog: str) -> None:
    dests = [d for d, _ in specs]
    usage = f"{prog} {' '.join(d.upper() for d in dests)}"
    given = [getattr(args, d) for d in dests if getattr(args, d) is not None]  # argparse fills them in order
    options = {d: (flag, getattr(args, f"{d}_option")) for d, flag in specs
               if flag and getattr(args, f"{d}_option", None) is not None}
    # all positionals given: the options may only repeat them. Fewer: the old spelling, where the positionals are
    # the paths that were positional then (`convert CHECKPOINT OUT --vocab-dir DIR`), in order
    slots = dests if len(given) == len(dests) else [d for d in dests if d not in options]
    if len(given) < len(slots):
        missing = " ".join(d.upper() for d in slots[len(given):])
        raise ConfigError(f"{prog}: {missing} not given", fix=f"give the paths as `{usage}`")
    if len(given) > len(slots):
        named = ", ".join(flag for flag, _ in options.values())
        raise ConfigError(f"{prog}: {len(given)} positional path(s) and {named} name more paths than it takes",
                          fix=f"give each path once, as `{usage}`")
    value = dict(zip(slots, given))
    for d, (flag, v) in options.items():
        if d in value and Path(value[d]) != Path(v):
            raise ConfigError(f"{prog}: {d.upper()} given twice, as {value[d]} and as {flag} {v}",
                              fix=f"give it once, as `{usage}`")
        value.setdefault(d, v)
    seen: dict[Path, str] = {}
    for d in dests:  # `spm train T --train-text T` would otherwise write into the train text
        twice = seen.setdefault(Path(value[d]), d)
        if twice != d:
            # the path first, like every refusal of an output location (check_output_location)
            raise ConfigError(f"{value[d]}: given to `{prog}` as both {twice.upper()} and {d.upper()}: a stage never "
                              "writes over its own input", fix=f"give each path once, as `{usage}`")
    for d, v in value.items():
        setattr(args, d, v)


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
    parser, hooks = _build(modules)
    argv = list(sys.argv[1:] if argv is None else argv)
    for rewrite in hooks:
        argv = rewrite(argv)
    args = parser.parse_args(argv)
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
