"""User-facing errors.

Everything a user can cause (a bad file, a bad option, a missing dependency) raises a subclass of
:class:`KorobertaError`. The CLI prints ``error: <message>`` on one line and exits with ``exit_code``; no
traceback. Messages name the offending file/option *and* the fix, e.g.::

    error: data/kowiki.xml.bz2: truncated bz2 stream after 41.2 MB (1,873 pages read); re-download it with
    `koroberta corpus download` (it resumes) and verify the checksum

Programming errors stay ordinary exceptions so they keep their traceback.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from pathlib import Path
from typing import Iterator


class KorobertaError(Exception):
    """Base class: an error the user can fix. ``str(e)`` is the whole one-line message."""

    exit_code = 2

    def __init__(self, message: str, *, path: object | None = None, fix: str | None = None):
        parts = []
        if path is not None:
            parts.append(f"{path}:")
        parts.append(message)
        if fix:
            parts.append(f"— fix: {fix}")
        super().__init__(" ".join(parts))


class ConfigError(KorobertaError):
    """An invalid config value or YAML file."""


class InputError(KorobertaError):
    """An input file is missing, malformed, or does not belong with the other inputs."""


class OutputError(KorobertaError):
    """An output location cannot be used (foreign files, not empty without --overwrite, ...)."""


class DependencyError(KorobertaError):
    """An optional dependency (fairseq, kss backend, CUDA, ...) is missing for the requested feature."""


class ParityError(KorobertaError):
    """A numeric or token-id parity check failed: the artifact must not be trusted."""

    exit_code = 3


class DownloadError(KorobertaError):
    """A download failed or its checksum does not match."""


#: errno values that mean "this location cannot be written" — the user's disk, mount or permissions, never a bug
_WRITE_ERRNOS = {"EACCES": "permission denied", "EPERM": "operation not permitted",
                 "EROFS": "read-only file system", "ENOSPC": "no space left on the device",
                 "EDQUOT": "disk quota exceeded", "ENOTDIR": "a parent of this path is a regular file, not a directory"}


def output_os_error(e: OSError, path: object | None = None) -> OutputError | None:
    """The one-line :class:`OutputError` for an ``OSError`` that says an output location cannot be written
    (permissions, read-only mount, full disk, a file where a directory should be), else None.

    ``path`` is the output the user chose (named first); ``e.filename``, the file the system refused, is added when
    it differs. Other errnos (ENOENT, EBADF, ...) return None: they can be bugs and keep their traceback.
    """
    name = errno.errorcode.get(e.errno or 0, "")
    if name == "EEXIST" and e.filename is not None and not os.path.isdir(e.filename):
        name = "ENOTDIR"  # mkdir(parents=True, exist_ok=True) on a path that is a file: the same user mistake
    if name not in _WRITE_ERRNOS:
        return None
    where = path if path is not None else e.filename
    detail = f" (writing {e.filename})" if e.filename is not None and str(e.filename) != str(where) else ""
    if name == "ENOTDIR" and where is not None:
        # name the file in the way: the first component of the path that exists and is not a directory
        blocker = next((p for p in reversed([Path(where), *Path(where).parents]) if p.exists() and not p.is_dir()),
                       None)
        if blocker is not None:
            detail = f" ({blocker} is a file)"
    if name in ("ENOSPC", "EDQUOT"):
        fix = "free disk space (or raise the quota), or choose an output location on another disk"
    elif name == "ENOTDIR":
        fix = "choose an output path whose parent components are all directories"
    elif name == "EROFS":
        fix = "choose an output location on a writable file system"
    else:
        fix = "choose an output location you can write to, or fix its permissions (ls -ld on its parent)"
    return OutputError(f"cannot write the output: {_WRITE_ERRNOS[name]}{detail}", path=where, fix=fix)


_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")


@contextlib.contextmanager
def rust_write_errors() -> Iterator[None]:
    """Re-raise a full disk or quota met by the Rust writers as the ``OSError`` it is.

    ``model.safetensors`` (safetensors: ``SafetensorError``) and ``tokenizer.json`` (tokenizers: a bare
    ``Exception``) report a failed write as their own exception type, the errno only in the text ("... No space
    left on device (os error 28)"), so :class:`~koroberta.artifacts.StageOutput` would let it through as a
    traceback. As an ``OSError`` it becomes the one-line output error every other stage gives. Other errors pass
    unchanged.
    """
    try:
        yield
    except (OSError, KorobertaError):
        raise
    except Exception as e:
        m = _RUST_OS_ERROR.search(str(e))
        code = int(m.group(1)) if m else None
        if code in (errno.ENOSPC, errno.EDQUOT):
            raise OSError(code, os.strerror(code)) from e
        raise
