"""User-facing errors.

Everything a user can cause (a bad file, a bad option, a missing dependency) raises a subclass of
:class:`KorobertaError`. The CLI prints ``error: <message>`` on one line and exits with ``exit_code``; no
traceback. Messages name the offending file/option *and* the fix, e.g.::

    error: data/kowiki.xml.bz2: truncated bz2 stream after 41.2 MB (1,873 pages read); re-download it with
    `koroberta corpus download` (it resumes) and verify the checksum

Programming errors stay ordinary exceptions so they keep their traceback.
"""

from __future__ import annotations


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
