"""corpus stage: kowiki dump (or WikiExtractor output / plain text) -> clean, kss-split, document-preserving text.

``build_corpus`` runs extract -> clean (merge + dedup) -> sentences (kss) -> split (train/valid/test by page-id
hash); each sub-step is its own complete-marked directory under ``out_dir`` (see :mod:`koroberta.corpus.steps`).
``build_corpus_sources`` does the same for several sources (top-level ``sources:``): one ``extract-<name>/`` per
source with its filter profile, then one merge across them (dedup, near-dedup, decontamination), then the same
sentence and split steps (the split applies the weights). ``extract_sources`` is its extract step for one shard of
a SLURM array (shard ``i`` of every source); ``steps.clean(..., num_shards=N)`` merges those shards back.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from pathlib import Path
from typing import Callable, Mapping, Sequence

from koroberta.artifacts import output_lock
from koroberta.corpus.config import CorpusConfig
from koroberta.errors import ConfigError, InputError
from koroberta.text import clean_text

log = logging.getLogger("koroberta.corpus")
_SOURCE_KINDS = "a kowiki dump (.xml.bz2/.xml), WikiExtractor output, a text file or a dataset on disk"


def check_source(source: str | Path) -> None:
    """Refuse a corpus source that is not a regular file or a directory, saying what it is instead; a missing path
    is left to the caller's "source not found".

    A pipe cannot work -- ``koroberta run`` with ``source: /dev/fd/63`` from ``<(bzcat dump.bz2)`` -- because the
    stage reads its source more than once: kind detection peeks at it, the completion marker fingerprints its
    content (a full read), then extraction reads it. Sockets and devices likewise; a symbolic link loop has no file
    at its end at all.
    """
    p = Path(source)
    try:
        st = p.stat()  # follows symbolic links: /dev/fd/63 -> pipe:[1234] is a FIFO here
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise InputError("is a symbolic link loop (the links lead back to themselves; no file at the end)",
                             path=p, fix="point at the real dump, file or directory (`ls -l` shows where each "
                                         "link leads)") from None
        if e.errno == errno.ENOENT and p.is_symlink():
            raise InputError(f"is a symbolic link to {os.readlink(p)}, which does not exist", path=p,
                             fix="point at the real dump, file or directory, or fix the link") from None
        if e.errno in (errno.EACCES, errno.EPERM):
            raise InputError("cannot be read: permission denied (on it or a directory above it)", path=p,
                             fix="make it readable for this user, or pass a copy you can read") from None
        return
    if stat.S_ISFIFO(st.st_mode):
        raise InputError("is a pipe (FIFO), not a file: the corpus stage reads its source more than once (to "
                         "fingerprint it, detect its kind, then read it)", path=p,
                         fix="write it to a file first: bzcat dump.bz2 > dump.xml (or pass the .bz2 itself: "
                             "koroberta reads .bz2/.xz directly)")
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        kind = ("a socket" if stat.S_ISSOCK(st.st_mode) else
                "a character device" if stat.S_ISCHR(st.st_mode) else
                "a block device" if stat.S_ISBLK(st.st_mode) else "not a regular file")
        raise InputError(f"is {kind}, not a file or directory", path=p,
                         fix=f"pass {_SOURCE_KINDS}, saved as a regular file")


def build_corpus(cfg: CorpusConfig, source: str | Path, out_dir: str | Path, *, workers: int = 1,
                 force: bool = False, overwrite: bool = False) -> Path:
    """extract -> clean -> sentence split -> train/valid/test; returns the complete ``out_dir/split`` directory
    with ``train.txt``/``valid.txt``/``test.txt`` and manifest stats (documents/sentences/characters per split,
    drop reasons). Completed sub-steps are skipped unless ``force``."""
    from koroberta.corpus import steps

    out = Path(out_dir)
    check_source(source)  # first: resolving a symlink loop (the output-location check does) would raise
    steps.check_corpus_dir(out, overwrite=overwrite, source=source)  # before any work: nothing to undo
    needs = _needs(cfg, {"source": Path(source)}, out, workers=workers, force=force)

    def chain() -> Path:
        steps.extract(cfg, source, out, workers=workers, force=force, overwrite=overwrite)
        steps.clean(cfg, out, force=force, overwrite=overwrite)
        steps.sentences(cfg, out, workers=workers, force=force, overwrite=overwrite)
        return steps.split(cfg, out, force=force, overwrite=overwrite)

    with output_lock(out):
        _announce(needs, out)
        return _restoring_if_needed(chain)


def _needs(cfg: CorpusConfig, sources: Mapping[str, Path], out: Path, *, workers: int, force: bool):
    """What the stage will need (:func:`koroberta.resources.corpus_needs`), or None when every step is complete (or
    a source is missing: the extract step says so). Reading the start of each source for it, the extract step's
    early refusals (wrong encoding, dbname, schema) are raised here, before any line is logged."""
    from koroberta.resources import corpus_complete, corpus_needs

    if not all(Path(p).exists() for p in sources.values()) or (not force and corpus_complete(cfg, out)):
        return None
    return corpus_needs(cfg, sources, workers).needs


def _announce(needs, out: Path) -> None:
    """The stage's first line, once its directory is locked (a refused output location stays one line)."""
    if needs is not None:
        from koroberta.resources import announce

        announce(log, "corpus", needs, out)


def _restoring_if_needed(chain: Callable[[], Path]) -> Path:
    """Walk the steps; when one must run and finds an input pruned (:mod:`koroberta.corpus.prune`), walk them again
    with pruned steps redone (the same bytes: what was complete downstream stays complete)."""
    from koroberta.corpus import steps
    from koroberta.corpus.prune import PrunedInput, restoring

    try:
        with steps.stage_needs_said():
            return chain()
    except PrunedInput:
        log.info("corpus: a step must run and its input's data was removed when the corpus last completed "
                 "(corpus.keep_intermediates: false); redoing the removed steps, then that step")
    with restoring(), steps.stage_needs_said():
        return chain()


def check_sources(cfg: CorpusConfig, paths: Mapping[str, str | Path], decontaminate: Sequence[str | Path]) -> None:
    """Before any work: every source of ``cfg.sources`` has a path that exists and is a file or directory, and every
    decontamination file parses (:func:`koroberta.corpus.decontaminate.load_items`), each problem one line."""
    from koroberta.corpus.decontaminate import load_items

    names = [s["name"] for s in cfg.sources]
    if sorted(paths) != sorted(names):
        raise ConfigError(f"corpus sources {names} and the source paths given {sorted(paths)} differ",
                          fix="fill corpus.sources and the paths from the same top-level `sources:` list")
    for name in names:
        p = Path(paths[name])
        check_source(p)
        if not p.exists():
            raise InputError(f"source {name!r}: path not found", path=p,
                             fix=f"point source {name!r}'s `path:` at an existing file or directory")
        if cfg.source_spec(name)["profile"] is None:
            raise ConfigError(f"source {name!r}: filter profile unresolved (its path did not exist when the config "
                              "was read)", fix="run the command again, or set the source's `profile:`")
    if decontaminate:
        load_items([Path(p) for p in decontaminate])  # a file that cannot be parsed says so now, not after extraction


def _sources_dir(cfg: CorpusConfig, paths: Mapping[str, str | Path], out: Path,
                 decontaminate: Sequence[str | Path], *, overwrite: bool) -> None:
    """Before any work on a multi-source corpus: the sources and evaluation files are usable
    (:func:`check_sources`) and ``out`` may hold the corpus steps (none of them is written into, or over, an input)."""
    from koroberta.corpus import steps

    check_sources(cfg, paths, decontaminate)
    inputs = {f"source.{n}": Path(p) for n, p in paths.items()}
    inputs.update({f"decontaminate.{i}": Path(p) for i, p in enumerate(decontaminate)})
    steps.check_corpus_dir(out, overwrite=overwrite, inputs=inputs)


def build_corpus_sources(cfg: CorpusConfig, paths: Mapping[str, str | Path], out_dir: str | Path, *,
                         decontaminate: Sequence[str | Path] = (), workers: int = 1, force: bool = False,
                         overwrite: bool = False) -> Path:
    """:func:`build_corpus` for the sources of ``cfg.sources`` (priority order), read from ``paths`` (name -> path),
    with the ``decontaminate`` evaluation files; returns the complete ``out_dir/split``."""
    from koroberta.corpus import steps

    out = Path(out_dir)
    _sources_dir(cfg, paths, out, decontaminate, overwrite=overwrite)
    needs = _needs(cfg, {n: Path(p) for n, p in paths.items()}, out, workers=workers, force=force)

    def chain() -> Path:
        for s in cfg.sources:
            steps.extract(cfg, paths[s["name"]], out, workers=workers, force=force, overwrite=overwrite,
                          source_name=s["name"])
        steps.clean(cfg, out, force=force, overwrite=overwrite, decontaminate=[Path(p) for p in decontaminate])
        steps.sentences(cfg, out, workers=workers, force=force, overwrite=overwrite)
        return steps.split(cfg, out, force=force, overwrite=overwrite)

    with output_lock(out):
        _announce(needs, out)
        return _restoring_if_needed(chain)


def extract_sources(cfg: CorpusConfig, paths: Mapping[str, str | Path], out_dir: str | Path, *, shard: int = 0,
                    num_shards: int = 1, decontaminate: Sequence[str | Path] = (), workers: int = 1,
                    force: bool = False, overwrite: bool = False) -> list[Path]:
    """The extract step of a multi-source corpus for one shard (a SLURM array task): shard ``shard`` of
    ``num_shards`` of every source of ``cfg.sources``, in priority order, each into its
    ``extract-<name>[-IIIII-of-NNNNN]/``; returns those directories. A shard already complete for this config and
    its source's content is skipped, so a resubmitted array redoes only what is missing.

    ``decontaminate`` is read by the clean step only; it is checked here so that a file that cannot be parsed fails
    the first array task, not the merge after every shard is done. No lock on ``out_dir``: the array's tasks share
    it and write different shard directories (each guarded by its own lock)."""
    from koroberta.corpus import steps

    out = Path(out_dir)
    _sources_dir(cfg, paths, out, decontaminate, overwrite=overwrite)
    from koroberta.artifacts import read_manifest
    from koroberta.resources import announce, extract_needs

    todo = [s for s in cfg.sources
            if read_manifest(out / steps.shard_name(f"extract-{s['name']}", shard, num_shards)) is None]
    if 0 <= shard < num_shards and (force or todo):  # this task has work to do: say what it needs first
        announce(log, "corpus extract", extract_needs(cfg, {n: Path(p) for n, p in paths.items()}, workers,
                                                      num_shards), out)
    return [steps.extract(cfg, paths[s["name"]], out, shard=shard, num_shards=num_shards, workers=workers,
                          force=force, overwrite=overwrite, source_name=s["name"]) for s in cfg.sources]
