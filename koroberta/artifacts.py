"""Atomic outputs, input fingerprints, manifests and completion markers — shared by every stage.

The contract (datatrove-style):

* A stage writes into a hidden temporary sibling directory (``.NAME.tmp-PID``), never into its final directory.
* When the work is done it writes ``manifest.json`` (stage, config, input fingerprints, output hashes, stats) and
  then, **last**, the completion marker ``_COMPLETE`` (holding the manifest's sha256), and renames the temporary
  directory into place. A stage killed at any point therefore leaves either nothing, a stale ``.tmp`` directory
  (removed by the next run), or the previous complete output — never something that looks complete.
* :func:`is_complete` says whether a directory holds a complete output *of this identity from these input
  contents*. Identity = the config fields that can change the output bytes (each stage config classifies every
  field, :meth:`koroberta.config.Config.identity`); run-time knobs (workers, threads, log intervals, launcher) are
  recorded in the manifest but never make a finished output look unfinished. Inputs are compared by *content*:
  a file by its sha256, an upstream stage directory by the hashes of its outputs (not by its manifest, which
  holds paths and run-time knobs). Moving or copying a run directory therefore keeps every marker valid.
* Manifests hold no timestamps or durations, so the same inputs and seed give byte-identical manifests too.
  Wall-clock timings go to ``timing.json``, which is not part of the fingerprint.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

from koroberta.config import Config
from koroberta.errors import OutputError, output_os_error

#: the corpus stage's text splits, which are also the data-bin's file prefixes (train.txt -> train.bin/.idx)
SPLITS = ("train", "valid", "test")
MARKER = "_COMPLETE"
MANIFEST = "manifest.json"
TIMING = "timing.json"
_OWN_FILES = {MARKER, MANIFEST, TIMING}


# -- hashing ----------------------------------------------------------------------------------------------------------
def file_digest(path: str | Path, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    """Hex digest of a file, read in ``chunk``-byte blocks (flat memory on multi-GB dumps)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    return file_digest(path, "sha256", chunk)


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def fingerprint(path: str | Path) -> str:
    """Content fingerprint of a file or directory.

    A complete stage directory is fingerprinted by the output hashes its manifest lists (so chaining stages costs
    no re-hashing, and neither the upstream config's run-time knobs nor its input paths leak into it). Other
    directories hash their files' names and contents in sorted order.
    """
    p = Path(path)
    if p.is_dir():
        m = read_manifest(p)
        if m is not None:
            return "stage:" + sha256_json(m.get("outputs", {}))
        h = hashlib.sha256()
        for f in sorted(q for q in p.rglob("*") if q.is_file()):
            h.update(str(f.relative_to(p)).encode() + b"\0" + sha256_file(f).encode() + b"\n")
        return "dir:" + h.hexdigest()
    if p.is_file():
        return "file:" + sha256_file(p)
    return "missing"


def output_hashes(root: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for f in sorted(q for q in root.rglob("*") if q.is_file()):
        rel = str(f.relative_to(root))
        if rel in _OWN_FILES:
            continue
        out[rel] = {"bytes": f.stat().st_size, "sha256": sha256_file(f)}
    return out


# -- atomic files -----------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it over ``path`` (atomic on POSIX)."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            if tmp.is_dir():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


# -- stage directories ------------------------------------------------------------------------------------------------
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_tmp(final: Path) -> None:
    """Remove ``.NAME.tmp-PID`` siblings left by killed runs (only those whose process is gone)."""
    if not final.parent.is_dir():
        return
    for q in final.parent.glob(f".{final.name}.tmp-*"):
        try:
            pid = int(q.name.rsplit("-", 1)[1])
        except ValueError:
            continue
        if pid == os.getpid() or not _pid_alive(pid):
            shutil.rmtree(q, ignore_errors=True) if q.is_dir() else q.unlink(missing_ok=True)


def read_manifest(out_dir: str | Path) -> dict[str, Any] | None:
    """The manifest of a *complete* output directory, else None."""
    d = Path(out_dir)
    marker, manifest = d / MARKER, d / MANIFEST
    if not (marker.is_file() and manifest.is_file()):
        return None
    if marker.read_text().strip() != sha256_file(manifest):
        return None  # manifest edited or marker from another run: not complete
    return read_json(manifest)


def input_fingerprints(inputs: Mapping[str, str | Path | None]) -> dict[str, dict[str, str]]:
    """``{name: {"path", "fingerprint"}}``. The path is recorded for people reading the manifest; only the
    fingerprint (content) is ever compared."""
    return {k: {"path": str(v), "fingerprint": fingerprint(v)} for k, v in sorted(inputs.items()) if v is not None}


def identity_of(config: Config | Mapping[str, Any]) -> dict[str, Any]:
    """The identity dict of a stage config. A plain mapping (a sub-step's own dict) is identity as a whole."""
    return config.identity() if isinstance(config, Config) else dict(config)


def config_of(config: Config | Mapping[str, Any]) -> dict[str, Any]:
    return config.to_dict() if isinstance(config, Config) else dict(config)


def identity_differences(manifest: Mapping[str, Any], config: Config | Mapping[str, Any],
                         inputs: Mapping[str, str | Path | None]) -> dict[str, tuple[Any, Any]]:
    """``{what: (recorded, now)}`` for every identity field and input whose value/content differs from what
    ``manifest`` was made with; empty means the manifest describes this very output."""
    diff: dict[str, tuple[Any, Any]] = {}
    old, new = manifest.get("identity", {}), identity_of(config)
    for k in sorted(set(old) | set(new)):
        if old.get(k) != new.get(k):
            diff[k] = (old.get(k), new.get(k))
    have = {k: v["fingerprint"] for k, v in manifest.get("inputs", {}).items()}
    want = {k: v["fingerprint"] for k, v in input_fingerprints(inputs).items()}
    for k in sorted(set(have) | set(want)):
        if have.get(k) != want.get(k):
            diff[f"input {k}"] = (have.get(k), want.get(k))
    return diff


def is_complete(out_dir: str | Path, stage: str, config: Config | Mapping[str, Any],
                inputs: Mapping[str, str | Path | None]) -> bool:
    """True when ``out_dir`` holds a complete output of ``stage`` with this identity, made from inputs with these
    contents. Run-time fields of ``config`` and the inputs' paths play no part."""
    m = read_manifest(out_dir)
    if m is None or m.get("stage") != stage:
        return False
    if m.get("identity_sha256") != sha256_json(identity_of(config)):
        return False
    return not identity_differences(m, config, inputs)


def skip_if_complete(out_dir: str | Path, stage: str, config: Config | Mapping[str, Any],
                     inputs: Mapping[str, str | Path | None], *, force: bool, log: Any) -> bool:
    """The one "skip when done" rule every stage uses: True (and a log line) when the output is complete for this
    identity and these input contents and ``force`` is not set."""
    if force or not is_complete(out_dir, stage, config, inputs):
        return False
    log.info("%s: %s is complete for this config and these inputs; skipping (--force reruns it)", stage, out_dir)
    return True


# -- who may write where ---------------------------------------------------------------------------------------------
#: the file a stage that works *in place* (train: checkpoints must survive a crash) writes at launch, before any
#: manifest exists; it names that stage as the directory's owner (koroberta.train.preflight.TRAIN_STATE)
IN_PLACE_STATE = {"train_config.json": "train"}
_OUTPUT_SCAN_DEPTH = 3  # a run's workdir holds stage outputs one level down, the corpus steps two


def owner_of(directory: str | Path) -> str | None:
    """The koroberta stage (or corpus step) that wrote ``directory``, complete or not, else None.

    A ``manifest.json`` of ours (it has ``stage`` and ``identity_sha256``) names it; a train directory is named by
    the state file train writes at launch, so a killed run's checkpoints are owned by train before any manifest.
    """
    d = Path(directory)
    m = d / MANIFEST
    if m.is_file():
        try:
            data = read_json(m)
        except (ValueError, OSError, UnicodeDecodeError):
            data = None
        if isinstance(data, dict) and isinstance(data.get("stage"), str) and "identity_sha256" in data:
            return data["stage"]
    for name, stage in IN_PLACE_STATE.items():
        if (d / name).is_file():
            return stage
    return None


def stage_outputs_under(directory: str | Path, depth: int = _OUTPUT_SCAN_DEPTH) -> list[tuple[Path, str]]:
    """``[(dir, stage)]`` for the stage outputs strictly below ``directory`` (hidden entries and what lies inside a
    stage output are not searched). Bounded by ``depth`` so a directory of 100k text files costs one listing."""
    found: list[tuple[Path, str]] = []
    level = [Path(directory)]
    for _ in range(depth):
        nxt = []
        for d in level:
            try:
                entries = sorted((e for e in os.scandir(d) if not e.name.startswith(".")), key=lambda e: e.name)
            except OSError:
                continue
            for e in (x for x in entries if x.is_dir(follow_symlinks=False)):
                owner = owner_of(e.path)
                if owner is not None:
                    found.append((Path(e.path), owner))
                else:
                    nxt.append(Path(e.path))
        level = nxt
    return found


def _is_scratch(name: str) -> bool:
    """Our own hidden siblings of an output: its lock, a killed run's temporary or replaced directory."""
    return name.startswith(".") and (name.endswith(".lock") or ".tmp-" in name or ".old-" in name)


def _family(stage: str) -> str:
    return stage.split(".", 1)[0]


def _real(p: str | Path) -> Path:
    return Path(os.path.realpath(p))


def check_output_location(final: str | Path, stage: str, inputs: Mapping[str, str | Path | None] | None = None, *,
                          overwrite: bool = False, nested_ok: tuple[str, ...] = (),
                          own_names: tuple[str, ...] = ()) -> None:
    """The one rule for where ``stage`` may write ``final`` (every stage calls it before any work, and
    :class:`StageOutput` again before it writes):

    * never over, into, or above one of the stage's own ``inputs`` (``preprocess run SPLIT VOCAB SPLIT``);
    * never inside another stage's output directory (``spm train --out RUN/corpus/split/vocab``);
    * an existing ``final`` is replaced only if it is this same stage's (or corpus step's) output; a directory that
      another stage wrote, or one holding other stages' outputs (a run's workdir), is refused even with
      ``--overwrite``: koroberta never deletes what it did not make;
    * a non-empty directory koroberta did not write at all is replaced only with ``overwrite``.

    ``nested_ok`` names stages whose outputs may lie below ``final`` (the corpus directory holds its steps'), and
    ``own_names`` the entry names (``NAME`` or ``NAME-…``) that are the stage's own even before they are complete
    (a corpus step directory; its own step checks what is inside it, so one failed SLURM array shard does not fail
    its siblings).
    Raises :class:`OutputError` with one line naming what is there.
    """
    final = Path(final)
    real = _real(final)
    for name, p in sorted((inputs or {}).items()):
        if p is None:
            continue
        rin = _real(p)
        if rin == real:
            rel = "is"
        elif real in rin.parents:
            rel = "holds"
        elif rin.parent != rin and rin in real.parents:
            rel = "lies inside"
        else:
            continue
        raise OutputError(f"output directory {rel} this stage's input {name} ({p}); a stage never writes over or "
                          f"into its own inputs", path=final, fix="choose an output directory outside the inputs")
    for anc in real.parents:
        owner = owner_of(anc)
        if owner is not None:
            raise OutputError(f"output directory lies inside {anc}, the output of the {owner} stage",
                              path=final, fix=f"choose a directory outside {anc} for the {stage} output")
    if not final.exists():
        return
    if not final.is_dir():
        raise OutputError("exists and is not a directory", path=final, fix="choose another output path")
    owner = owner_of(final)
    if owner is not None:
        if owner == stage:
            return  # our own earlier output (another identity, or --force): replaced atomically at the end
        raise OutputError(f"holds the output of the {owner} stage, not of {stage}; koroberta never replaces "
                          f"another stage's output (not even with --overwrite)", path=final,
                          fix=f"choose a new directory for the {stage} output (or delete {final} yourself if you "
                              f"no longer need it)")
    nested = stage_outputs_under(final)
    others = [(d, s) for d, s in nested if _family(s) not in nested_ok]
    if others:
        listed = ", ".join(f"{d.relative_to(final)} ({s})" for d, s in others[:3])
        raise OutputError(f"holds the outputs of other stages: {listed}{', ...' if len(others) > 3 else ''}",
                          path=final, fix=f"choose a new directory for the {stage} output")
    if overwrite:
        return
    own = {d.name for d, _ in nested if d.parent == final}  # the corpus directory's own step directories
    entries = sorted(e.name for e in final.iterdir() if e.name not in own and not _is_scratch(e.name)
                     and not any(e.name == n or e.name.startswith(n + "-") for n in own_names))
    if entries:
        raise OutputError(f"output directory holds files koroberta did not write ({', '.join(entries[:3])}"
                          f"{', ...' if len(entries) > 3 else ''})", path=final,
                          fix="choose an empty or new directory, or pass --overwrite to replace it")


#: the lock files this process holds (POSIX locks do not conflict within one process: checked here instead)
_HELD_LOCKS: set[str] = set()


@contextlib.contextmanager
def output_lock(final: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``final`` while a process writes it: a second koroberta process writing the same
    output (two `koroberta run`s of one config, a training launched twice into one save dir) is refused in one line
    instead of interleaving its files.

    A POSIX record lock (``lockf``) on a hidden sibling ``.NAME.lock``, removed again on release. The kernel drops
    it when the process dies, so a killed run never leaves a stale lock (at worst the empty file, which the next run
    reuses). POSIX, not ``flock``: a ``flock`` is shared with forked children, so the corpus stage's pool workers
    of a killed run would hold it on until they noticed; a record lock belongs to this process only. SLURM array
    shards write different directories and training ranks are children of one `koroberta train`, so neither
    contends. After locking, the file must still be the one at the path (a holder may have just unlinked it);
    otherwise the lock is taken again on the new file.
    """
    final = Path(final)
    lock = final.with_name(f".{final.name}.lock")
    busy = OutputError(f"another koroberta process is writing this output right now (it holds {lock.name})",
                       path=final, fix="wait for it to finish (or stop it), or choose another output directory")
    key = os.path.realpath(lock)
    if key in _HELD_LOCKS:
        raise busy  # this very process (an in-process caller) is writing it
    for _ in range(10):
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)  # lockf needs write access; nothing is written
        except OSError as e:  # read-only mount, permissions, a file in the way: the output's one-line error
            err = output_os_error(e, final)
            if err is None:
                raise
            raise err from None
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EACCES, errno.EAGAIN):
                raise busy from None
            raise
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # locked a file its holder had just removed: take the lock on the current one
    else:
        raise OutputError(f"could not take the lock {lock.name}: it keeps being replaced", path=final,
                          fix="check that no other process is writing this output, then rerun")
    _HELD_LOCKS.add(key)
    try:
        yield
    finally:
        _HELD_LOCKS.discard(key)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)  # while still holding it: a waiter that opened it re-checks the path (above)
        os.close(fd)


def stage_manifest(stage: str, config: Mapping[str, Any], identity: Mapping[str, Any],
                   inputs: Mapping[str, Any], outputs: Mapping[str, Any], stats: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest every stage writes. ``config`` (all fields, run-time ones included) is for people;
    ``identity_sha256`` and the input fingerprints are what completion keys on."""
    return {"stage": stage, "config": dict(config), "identity": dict(identity),
            "identity_sha256": sha256_json(dict(identity)), "inputs": dict(inputs), "outputs": dict(outputs),
            "stats": dict(stats)}


class StageOutput:
    """Context manager for one stage (or shard) output directory.

    >>> with StageOutput(out, stage="spm", config=cfg, inputs={"train": p}) as st:
    ...     (st.tmp / "spm.model").write_bytes(...)
    ...     st.stats["pieces"] = 32000

    On a clean exit: manifest, marker (last), rename into place. On an exception: the temp dir is removed and the
    previous output (if any) is left untouched.
    """

    def __init__(self, out_dir: str | Path, *, stage: str, config: Config | Mapping[str, Any],
                 inputs: Mapping[str, str | Path | None], overwrite: bool = False):
        self.final = Path(out_dir)
        self.stage = stage
        self.config = config_of(config)
        self.identity = identity_of(config)
        self.inputs = dict(inputs)
        self.overwrite = overwrite
        self.stats: dict[str, Any] = {}
        self.timing: dict[str, float] = {}
        self.tmp = self.final.with_name(f".{self.final.name}.tmp-{os.getpid()}")
        self._t0 = 0.0
        self._lock: contextlib.AbstractContextManager | None = None

    def __enter__(self) -> "StageOutput":
        try:
            check_output_location(self.final, self.stage, self.inputs, overwrite=self.overwrite)
            self.final.parent.mkdir(parents=True, exist_ok=True)
            lock = output_lock(self.final)
            lock.__enter__()
            self._lock = lock
            remove_stale_tmp(self.final)
            if self.tmp.exists():
                shutil.rmtree(self.tmp)
            self.tmp.mkdir(parents=True)
        except OSError as e:  # read-only mount, permissions, a file where a directory should be: one line, no traceback
            self._release()
            err = output_os_error(e, self.final)
            if err is None:
                raise
            raise err from None
        except BaseException:
            self._release()
            raise
        try:
            self._fingerprints = input_fingerprints(self.inputs)  # hash inputs *before* work, as they were read
        except BaseException:
            self._release()
            raise
        self._t0 = time.perf_counter()
        return self

    def finish(self) -> dict[str, Any]:
        manifest = stage_manifest(self.stage, self.config, self.identity, self._fingerprints,
                                  output_hashes(self.tmp), self.stats)
        (self.tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                                         encoding="utf-8")
        self.timing.setdefault("total_s", round(time.perf_counter() - self._t0, 3))
        (self.tmp / TIMING).write_text(json.dumps(self.timing, indent=2, sort_keys=True) + "\n")
        # the marker goes last: its presence means everything above is on disk
        (self.tmp / MARKER).write_text(sha256_file(self.tmp / MANIFEST) + "\n")
        if self.final.exists():
            old = self.final.with_name(f".{self.final.name}.old-{os.getpid()}")
            os.replace(self.final, old)
            os.replace(self.tmp, self.final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.tmp, self.final)
        return manifest

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._exit(exc_type, exc)
        finally:
            self._release()

    def _release(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.__exit__(None, None, None)

    def _exit(self, exc_type, exc) -> None:
        if exc_type is None:
            try:
                self.manifest = self.finish()
            except OSError as e:
                shutil.rmtree(self.tmp, ignore_errors=True)
                err = output_os_error(e, self.final)
                if err is None:
                    raise
                raise err from None
            return
        if self.tmp.exists():
            shutil.rmtree(self.tmp, ignore_errors=True)
        # the system refused a write into the temporary directory (disk full, quota, ...): a one-line error naming the
        # output, for every stage at once. A failed write() carries no file name; a full disk or quota while this
        # stage writes its output is taken to be the output's. Errors naming other paths (inputs) pass unchanged.
        if isinstance(exc, OSError):
            if exc.filename is None:
                ours = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            else:
                ours = Path(os.path.abspath(exc.filename)).is_relative_to(os.path.abspath(self.tmp))
            err = output_os_error(exc, self.final) if ours else None
            if err is not None:
                raise err from None
