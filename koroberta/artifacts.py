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


def _check_replaceable(final: Path, overwrite: bool) -> None:
    if not final.exists():
        return
    if not final.is_dir():
        raise OutputError(f"{final}: exists and is not a directory", fix="choose another output path")
    entries = [e.name for e in final.iterdir()]
    if not entries:
        return
    if (final / MANIFEST).is_file() or (final / MARKER).is_file() or overwrite:
        return  # our own earlier output (complete or not): replaced atomically at the end
    raise OutputError(f"{final}: output directory holds files koroberta did not write ({', '.join(sorted(entries)[:3])}"
                      f"{', ...' if len(entries) > 3 else ''})",
                      fix="choose an empty or new directory, or pass --overwrite to replace it")


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

    def __enter__(self) -> "StageOutput":
        try:
            _check_replaceable(self.final, self.overwrite)
            self.final.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_tmp(self.final)
            if self.tmp.exists():
                shutil.rmtree(self.tmp)
            self.tmp.mkdir(parents=True)
        except OSError as e:  # read-only mount, permissions, a file where a directory should be: one line, no traceback
            err = output_os_error(e, self.final)
            if err is None:
                raise
            raise err from None
        self._fingerprints = input_fingerprints(self.inputs)  # hash inputs *before* work, as they were read
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
