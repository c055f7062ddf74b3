"""Removing the corpus's intermediates once the whole stage is complete, and redoing them when a later change needs
them again.

The corpus stage writes the text several times over: ``extract*/docs.jsonl``, ``clean/docs.jsonl``,
``sentences*/sentences.jsonl`` and then its product, ``split/`` (the ``.txt`` splits and ``hf/*.parquet``). Only
``split/`` is read by later stages, so keeping every copy costs a user with tens of GB of text several times that
in disk (bench/results/sizing.md measures it). When the split step completes, :func:`prune_intermediates` deletes the
data files of the complete extract, clean and sentences directories and leaves their manifests and completion markers
in place, plus ``PRUNED.json`` saying what went and why. The audit files (``excluded.jsonl``: what the filters and
the merge dropped) and the reports stay. ``corpus.keep_intermediates: true`` keeps everything.

Why the manifests stay: a complete directory is fingerprinted by the output hashes its manifest lists
(:func:`koroberta.artifacts.fingerprint`), so a pruned step still *is* complete for everything downstream. Running
the same corpus again (``koroberta run``, ``corpus build``, or a resubmitted SLURM array) skips every step as before,
and each array task still skips its finished shard.

When a step must run and one of its inputs was pruned (a changed split fraction needs the sentences again; a changed
kss backend needs clean/), :func:`require_data` raises :class:`PrunedInput`. ``corpus build`` and ``koroberta run``
catch it and walk the steps again inside :func:`restoring`, where a pruned output does not count as complete: the
pruned steps are redone -- the same bytes, since every step is deterministic, so whatever downstream was complete
stays complete -- and the step that needed them runs. The separate step commands of a SLURM array cannot redo
another job's shards, so there the error names the fix: submit the array again with ``--restore``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
from pathlib import Path
from typing import Iterable, Iterator

from koroberta.artifacts import atomic_write_text, read_manifest
from koroberta.errors import InputError

log = logging.getLogger("koroberta.corpus")

#: the marker a pruned step directory carries (not an output: the manifest's hashes are unchanged)
PRUNED = "PRUNED.json"
#: the data file of each intermediate step, by manifest stage: what nothing reads once split/ is complete
DATA_FILES = {"corpus.extract": "docs.jsonl", "corpus.clean": "docs.jsonl", "corpus.sentences": "sentences.jsonl"}

_restoring: contextvars.ContextVar[bool] = contextvars.ContextVar("koroberta_corpus_restoring", default=False)


class PrunedInput(InputError):
    """A step must run and an input step's data was removed when the corpus last completed. ``corpus build`` /
    ``koroberta run`` redo the pruned steps (:func:`restoring`); a single step command says to run with
    ``--restore``."""


@contextlib.contextmanager
def restoring() -> Iterator[None]:
    """Within it, a pruned step output is not complete: the step is redone (``--restore`` on a step command)."""
    token = _restoring.set(True)
    try:
        yield
    finally:
        _restoring.reset(token)


def is_pruned(step_dir: Path) -> bool:
    """A complete step directory whose data file is gone (pruned by us, or deleted by hand: both mean the same)."""
    m = read_manifest(step_dir)
    name = DATA_FILES.get((m or {}).get("stage", ""))
    return name is not None and not (step_dir / name).is_file()


def must_redo(step_dir: Path) -> bool:
    """True inside :func:`restoring` for a pruned step: its completion marker does not let it be skipped."""
    return _restoring.get() and is_pruned(step_dir)


def require_data(step_dirs: Iterable[Path], needed_by: str) -> None:
    """Before a step reads its inputs' data: refuse (:class:`PrunedInput`) when any of them was pruned."""
    gone = [d for d in step_dirs if is_pruned(d)]
    if gone:
        names = ", ".join(d.name for d in gone[:3]) + (f" and {len(gone) - 3} more" if len(gone) > 3 else "")
        raise PrunedInput(f"{needed_by} must run, and the data of {names} was removed when the corpus last completed "
                          "(corpus.keep_intermediates: false)", path=gone[0].parent,
                          fix="run `koroberta corpus build` or `koroberta run`, which redo them, or submit the "
                              "step commands (the SLURM array) again with --restore; corpus.keep_intermediates: true "
                              "keeps them from now on")


def intermediate_dirs(out_dir: Path) -> list[Path]:
    """The complete extract / clean / sentences directories directly under the corpus directory ``out_dir``, of any
    shard count (an earlier array with another N is this stage's own output too)."""
    out = []
    for d in sorted(p for p in out_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        m = read_manifest(d)
        if m is not None and m.get("stage") in DATA_FILES:
            out.append(d)
    return out


def prune_intermediates(out_dir: Path) -> int:
    """Delete the data files of ``out_dir``'s complete intermediate steps (call only once ``split/`` is complete);
    returns the bytes freed. Idempotent: a pruned directory is left as it is."""
    freed = 0
    pruned: list[str] = []
    for d in intermediate_dirs(out_dir):
        stage = read_manifest(d)["stage"]  # type: ignore[index]
        data = d / DATA_FILES[stage]
        if not data.is_file():
            continue
        size = data.stat().st_size
        # the note first: a kill between the two leaves a note about a file still there, never a silent gap
        atomic_write_text(d / PRUNED, json.dumps({
            "removed": {data.name: size},
            "why": "the corpus stage completed (split/ is its output) and corpus.keep_intermediates is false",
            "restore": "koroberta corpus build / koroberta run redo it when a change needs it; step commands take "
                       "--restore"}, indent=2) + "\n")
        data.unlink()
        freed += size
        pruned.append(d.name)
    if pruned:
        log.info("corpus: removed the intermediates of %s (%.2f GB); split/ is the output "
                 "(corpus.keep_intermediates: true keeps them)", ", ".join(_short(pruned)), freed / 1e9)
    return freed


def _short(names: list[str]) -> list[str]:
    """Directory names for one log line: an array's shards as ``extract-*-of-00016 (16)``."""
    groups: dict[str, int] = {}
    for n in names:
        key = re.sub(r"-\d{5}-of-(\d{5})$", r"-*-of-\1", n)
        groups[key] = groups.get(key, 0) + 1
    return [k if c == 1 else f"{k} ({c})" for k, c in groups.items()]
