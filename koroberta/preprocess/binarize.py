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

def run_fairseq_preprocess(srcdict: Path, prefixes: dict[str, Path], destdir: Path, workers: int,
                           extra_valid: dict[str, Path] | None = None) -> None:
    """``fairseq-preprocess --only-source --srcdict ... --dataset-impl mmap`` on piece-text files (the reference).

    ``extra_valid`` (``{subset: piece text}``, the per-source ``valid_<name>`` subsets) rides on ``--validpref`` as
    a comma list after ``valid``: fairseq binarizes the k-th entry exactly like ``valid`` and names it ``valid<k>``
    (plain ``valid`` when ``valid`` itself is not given); it is renamed to its subset here. A ``valid<k>`` left in
    the data-bin would be combined into ``valid`` by masked_lm, so none is.
    """
    try:
        import fairseq_cli  # noqa: F401
    except ImportError:
        raise DependencyError("fairseq is not installed", fix="run scripts/setup_env.sh or use method: fused") from None
    valids = ([("valid", prefixes["valid"])] if "valid" in prefixes else []) + sorted((extra_valid or {}).items())
    if len(valids) > 1 and any("," in str(p) for _, p in valids):
        raise InputError("a path holds ',', which fairseq-preprocess's --validpref list would split",
                         path=valids[0][1].parent, fix="use method: fused, or a directory without ','")
    cmd = [sys.executable, "-m", "fairseq_cli.preprocess", "--only-source", "--srcdict", str(srcdict),
           "--destdir", str(destdir), "--dataset-impl", "mmap", "--workers", str(max(1, workers))]
    if "train" in prefixes:
        cmd += ["--trainpref", str(prefixes["train"])]
    if valids:
        cmd += ["--validpref", ",".join(str(p) for _, p in valids)]
    if "test" in prefixes:
        cmd += ["--testpref", str(prefixes["test"])]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
        raise InputError(f"fairseq-preprocess failed: {tail[0]}", path=destdir,
                         fix="see the message; the encoded piece text is kept nowhere, rerun with -v") from None
    log.debug("fairseq-preprocess: %s", r.stderr[-2000:])
    for k, (subset, _) in enumerate(valids):
        written = f"valid{k}" if k else "valid"
        if written != subset:  # never a collision: the targets are "valid" or valid_<name>, never valid<digit>
            for ext in ("bin", "idx"):
                (destdir / f"{written}.{ext}").rename(destdir / f"{subset}.{ext}")
