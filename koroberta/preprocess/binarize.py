"""The fairseq-preprocess path of the preprocess stage (the reference the fused writer is tested against).

The mmap ``.bin``/``.idx`` format itself -- writer, readers and integrity check -- is :mod:`koroberta.databin`, shared
with the train stage's preflight.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from koroberta.errors import DependencyError, InputError

log = logging.getLogger("koroberta.preprocess")

def run_fairseq_preprocess(srcdict: Path, prefixes: dict[str, Path], destdir: Path, workers: int) -> None:
    """``fairseq-preprocess --only-source --srcdict ... --dataset-impl mmap`` on piece-text files (the reference)."""
    try:
        import fairseq_cli  # noqa: F401
    except ImportError:
        raise DependencyError("fairseq is not installed", fix="run scripts/setup_env.sh or use method: fused") from None
    cmd = [sys.executable, "-m", "fairseq_cli.preprocess", "--only-source", "--srcdict", str(srcdict),
           "--destdir", str(destdir), "--dataset-impl", "mmap", "--workers", str(max(1, workers))]
    for split, flag in (("train", "--trainpref"), ("valid", "--validpref"), ("test", "--testpref")):
        if split in prefixes:
            cmd += [flag, str(prefixes[split])]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
        raise InputError(f"fairseq-preprocess failed: {tail[0]}", path=destdir,
                         fix="see the message; the encoded piece text is kept nowhere, rerun with -v") from None
    log.debug("fairseq-preprocess: %s", r.stderr[-2000:])

