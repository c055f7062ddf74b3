"""fairseq mmap data-bin writers: the fused path (spm ids straight to .bin/.idx) and the fairseq-preprocess path.

The on-disk format written here is fairseq 0.12's ``MMapIndexedDataset`` (fairseq/data/indexed_dataset.py):

* ``.bin``: every line's ids (+ eos) back to back, dtype ``best_fitting_int_dtype(len(dictionary))`` where the
  dictionary is the one ``--srcdict`` loads (4 specials + dict.txt rows, *without* the ``<mask>`` the task adds
  later): uint16 below 65,500 symbols, uint32 below 2**32-1, else int64.
* ``.idx``: ``b"MMIDIDX\\x00\\x00"``, ``<Q`` version 1, ``<B`` dtype code, ``<Q`` number of items, the sizes as int32,
  then the byte offsets as int64. fairseq 0.12 writes no ``doc_idx`` (that is Megatron's variant), and its
  multi-worker merge just concatenates the shards' sizes and bytes, so the result does not depend on ``--workers``.
"""

from __future__ import annotations

import logging
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np

from koroberta.errors import DependencyError, InputError

log = logging.getLogger("koroberta.preprocess")

HDR_MAGIC = b"MMIDIDX\x00\x00"
DTYPE_CODES = {np.uint8: 1, np.int8: 2, np.int16: 3, np.int32: 4, np.int64: 5, np.uint16: 8, np.uint32: 9}


def best_fitting_int_dtype(n_symbols: int) -> type:
    """Same thresholds as ``fairseq.data.indexed_dataset.best_fitting_int_dtype`` (not imported: fairseq's import
    pulls in torch and costs ~3 s)."""
    if n_symbols < 65500:
        return np.uint16
    if n_symbols < 4294967295:
        return np.uint32
    return np.int64


def write_mmap_index(path: str | Path, sizes: np.ndarray, dtype: type) -> None:
    """Write a fairseq mmap ``.idx`` for items of ``sizes`` elements of ``dtype``."""
    sizes = np.asarray(sizes, dtype=np.int64)
    pointers = np.zeros(len(sizes), dtype=np.int64)
    if len(sizes) > 1:
        np.cumsum(sizes[:-1] * np.dtype(dtype).itemsize, out=pointers[1:])
    with open(path, "wb") as f:
        f.write(HDR_MAGIC)
        f.write(struct.pack("<Q", 1))
        f.write(struct.pack("<B", DTYPE_CODES[dtype]))
        f.write(struct.pack("<Q", len(sizes)))
        f.write(sizes.astype(np.int32).tobytes(order="C"))
        f.write(pointers.tobytes(order="C"))


def _read_index(idx_path: str | Path) -> tuple[int, np.ndarray]:
    """(dtype code, sizes) of a fairseq mmap ``.idx``: magic, u64 version, u8 dtype, u64 count, int32 sizes[count],
    int64 pointers[count] (fairseq.data.indexed_dataset.MMapIndexedDataset.Index, as write_mmap_index writes it)."""
    try:
        with open(idx_path, "rb") as f:
            head = f.read(26)
            if len(head) < 26 or head[:9] != HDR_MAGIC:
                raise InputError("not a fairseq mmap index (bad header)", path=idx_path,
                                 fix="rebuild the data-bin with `koroberta preprocess` (dataset-impl mmap)")
            (code,) = struct.unpack("<B", head[17:18])
            (count,) = struct.unpack("<Q", head[18:26])
            sizes = np.fromfile(f, dtype=np.int32, count=count)
    except OSError as e:
        raise InputError(f"cannot read ({e.strerror})", path=idx_path, fix="rebuild the data-bin") from None
    if len(sizes) != count:
        raise InputError(f"truncated index ({len(sizes)} of {count} sizes)", path=idx_path,
                         fix="rebuild the data-bin with `koroberta preprocess`")
    return code, sizes


def read_mmap_sizes(idx_path: str | Path) -> np.ndarray:
    """Token counts per item of a fairseq mmap ``.idx`` (the ``.bin`` is not read)."""
    return _read_index(idx_path)[1]


def read_mmap(prefix: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(sizes, flat ids) of a fairseq mmap dataset ``prefix.{idx,bin}`` — for checks and tests, no torch needed."""
    code, sizes = _read_index(str(prefix) + ".idx")
    dtype = {v: k for k, v in DTYPE_CODES.items()}[code]
    return sizes, np.fromfile(str(prefix) + ".bin", dtype=dtype)


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

