"""fairseq data-bin I/O: the mmap format (written by preprocess, checked and read by train preflight and the
learning check) and what identifies a data-bin's content (train completion).

The on-disk format is fairseq 0.12's ``MMapIndexedDataset`` (fairseq/data/indexed_dataset.py):

* ``.bin``: every line's ids (+ eos) back to back, dtype ``best_fitting_int_dtype(len(dictionary))`` where the
  dictionary is the one ``--srcdict`` loads (4 specials + dict.txt rows, *without* the ``<mask>`` the task adds
  later): uint16 below 65,500 symbols, uint32 below 2**32-1, else int64.
* ``.idx``: ``b"MMIDIDX\\x00\\x00"``, ``<Q`` version 1, ``<B`` dtype code, ``<Q`` number of items, the sizes as int32,
  then the byte offsets as int64. fairseq 0.12 writes no ``doc_idx`` (that is Megatron's variant), and its
  multi-worker merge just concatenates the shards' sizes and bytes, so the result does not depend on ``--workers``.

Training reads ``dict.txt`` and the ``<split>.bin``/``<split>.idx`` pairs, nothing else. A sharded data-bin
(``preprocess.shards`` > 1, :func:`shard_names`) holds them in ``shard0/`` .. ``shard{N-1}/`` instead: fairseq-train
gets ``shard0:shard1:...`` and its masked_lm task reads dict.txt and the valid subsets from the first path only and
train from path ``(epoch - 1) % N``, one shard in memory per epoch. The data-bin's own manifest
also lists files training never reads (``spm.model``, ``<split>.spm`` when ``keep_encoded``) and records the
preprocess config, whose run-time knobs (``chunk_lines``, ``method``, ...) cannot change those bytes. So the train
stage identifies its data by :func:`data_fingerprint` -- the hashes of exactly the files fairseq loads -- and a
harmless preprocess change (or a copied data-bin) never looks like new data.
"""

from __future__ import annotations

import hashlib
import re
import struct
from pathlib import Path

import numpy as np

from koroberta.artifacts import MARKER, read_manifest, sha256_file
from koroberta.errors import InputError

HDR_MAGIC = b"MMIDIDX\x00\x00"
#: a sharded data-bin's shard directories (``preprocess.shards``): shard0/ .. shard{N-1}/, each a fairseq data-bin
_SHARD_DIR = re.compile(r"shard\d+")
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


def check_mmap_dataset(prefix: str | Path) -> np.ndarray:
    """Check that ``prefix.idx`` and ``prefix.bin`` form one intact fairseq mmap dataset; return the sizes.

    What fairseq itself would only find out mid-training (an IndexError or a garbage batch hours in): the header
    (magic, version 1, a known dtype code), the ``.idx`` length (exactly header + count sizes + count pointers, so a
    cut-off index is caught even when its sizes are whole), sizes >= 0, the first and last pointers agreeing with
    the sizes, and the ``.bin`` length equal to the tokens the index describes. Reads the header, the sizes and two
    pointers, never the ``.bin``: cheap on a multi-GB data-bin.
    """
    idx, bin_ = Path(str(prefix) + ".idx"), Path(str(prefix) + ".bin")
    fix = "rerun `koroberta preprocess` (with --force) to rebuild the data-bin"
    for p in (idx, bin_):
        if not p.is_file():
            raise InputError("missing", path=p, fix=fix)
    code, sizes = _read_index(idx)
    with open(idx, "rb") as f:
        (version,) = struct.unpack("<Q", f.read(17)[9:17])
    dtype = {v: k for k, v in DTYPE_CODES.items()}.get(code)
    if version != 1 or dtype is None:
        raise InputError(f"not a fairseq 0.12 mmap index (version {version}, dtype code {code})", path=idx, fix=fix)
    count, item = len(sizes), np.dtype(dtype).itemsize
    want_len = 26 + 4 * count + 8 * count
    have_len = idx.stat().st_size
    if have_len != want_len:
        raise InputError(f"index is {have_len:,} bytes, but its header says {count:,} items ({want_len:,} bytes): "
                         f"{'truncated' if have_len < want_len else 'trailing bytes'}", path=idx, fix=fix)
    if count and int(sizes.min()) < 0:
        raise InputError("index holds negative item sizes (damaged)", path=idx, fix=fix)
    tokens = int(sizes.sum(dtype=np.int64))
    if count:
        pointers = np.memmap(idx, dtype=np.int64, mode="r", offset=26 + 4 * count, shape=(count,))
        first, last = int(pointers[0]), int(pointers[-1])
        del pointers
        if first != 0 or last != (tokens - int(sizes[-1])) * item:
            raise InputError("index pointers do not match its sizes (damaged)", path=idx, fix=fix)
    have_bin = bin_.stat().st_size
    if have_bin != tokens * item:
        raise InputError(f".bin is {have_bin:,} bytes, but {idx.name} describes {tokens:,} tokens of {item} bytes "
                         f"({tokens * item:,} bytes): {'truncated' if have_bin < tokens * item else 'too long'}",
                         path=bin_, fix=fix)
    return sizes


def read_mmap(prefix: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(sizes, flat ids) of a fairseq mmap dataset ``prefix.{idx,bin}`` — for checks and tests, no torch needed."""
    code, sizes = _read_index(str(prefix) + ".idx")
    dtype = {v: k for k, v in DTYPE_CODES.items()}[code]
    return sizes, np.fromfile(str(prefix) + ".bin", dtype=dtype)


def max_token_id(bin_path: str | Path, dtype: type, chunk: int = 1 << 26) -> int:
    """The largest id in a fairseq mmap ``.bin`` of ``dtype`` (-1 when empty): one sequential read, ``chunk``
    elements (128 MiB of uint16) at a time, so a multi-GB file costs flat memory."""
    n = Path(bin_path).stat().st_size // np.dtype(dtype).itemsize
    if n == 0:
        return -1
    ids = np.memmap(bin_path, dtype=dtype, mode="r", shape=(n,))
    try:
        return max(int(ids[i:i + chunk].max()) for i in range(0, n, chunk))
    finally:
        del ids


def mmap_dtype(idx_path: str | Path) -> type:
    """The element dtype an mmap ``.idx`` declares for its ``.bin``, from the header alone (the index itself is
    checked by :func:`check_mmap_dataset`)."""
    with open(idx_path, "rb") as f:
        head = f.read(18)
    code = head[17] if len(head) == 18 and head[:9] == HDR_MAGIC else None
    dtype = {v: k for k, v in DTYPE_CODES.items()}.get(code)
    if dtype is None:
        raise InputError(f"not a fairseq 0.12 mmap index (dtype code {code})", path=idx_path,
                         fix="rerun `koroberta preprocess` (with --force) to rebuild the data-bin")
    return dtype


def valid_subsets(data_bin: str | Path, stats: dict | None = None) -> list[str]:
    """The fairseq subsets to validate on, ``valid`` first: plus one ``valid_<name>`` per source of a multi-source
    corpus (:mod:`koroberta.preprocess.per_source`). A data-bin with a manifest has them in its stats
    (``valid_subsets``; ``stats`` when the caller has read it already); one without (copied, hand-made) has those
    whose ``.idx`` it holds. Whether each is intact is for the caller to check (train preflight)."""
    db = Path(data_bin)
    if stats is None:
        stats = ((read_manifest(db) or {}).get("stats") or {}) if (db / "manifest.json").is_file() else None
    if stats is not None:
        listed = [s for s in stats.get("valid_subsets") or [] if s != "valid"]
    else:
        listed = sorted(p.name[:-len(".idx")] for p in db.glob("valid_*.idx") if p.is_file())
    return ["valid", *listed]


def changed_since_manifest(data_bin: str | Path, outputs: dict[str, dict]) -> list[str]:
    """The files training reads (dict.txt, .bin, .idx) whose content no longer has the sha256 the data-bin's
    manifest lists (same size, other bytes: an edited or damaged file; sizes are checked separately).

    Cheap on an untouched data-bin: preprocess writes ``_COMPLETE`` after every output, so only a file modified at
    or after the marker (an edit, or a copy that did not keep times) is hashed again.
    """
    db = Path(data_bin)
    marker_mtime = (db / MARKER).stat().st_mtime_ns
    changed = []
    for name in data_files(db, list(outputs)):
        p = db / name
        if p.stat().st_mtime_ns >= marker_mtime and sha256_file(p) != outputs[name].get("sha256"):
            changed.append(name)
    return changed


def shard_name(k: int) -> str:
    """The directory of shard ``k`` in a sharded data-bin (``preprocess.shards`` > 1)."""
    return f"shard{k}"


def shard_names(data_bin: str | Path, stats: dict | None = None) -> list[str]:
    """A sharded data-bin's shard directories in the order fairseq-train reads them (``shard0`` first: fairseq loads
    dict.txt and the valid subsets from the first path only, and train shard ``(epoch - 1) % N`` each epoch); ``[]``
    for the one-directory layout. A data-bin with a manifest has the count in its stats (``shards``; ``stats`` when
    the caller has read it already); one without (copied, hand-made) has the consecutive ``shard<k>/`` directories
    holding a ``train.idx``, when it has no ``train.idx`` of its own."""
    db = Path(data_bin)
    if stats is None:
        stats = ((read_manifest(db) or {}).get("stats") or {}) if (db / "manifest.json").is_file() else None
    if stats is not None:
        n = int(stats.get("shards") or 1)
        return [shard_name(k) for k in range(n)] if n > 1 else []
    if (db / "train.idx").is_file():
        return []
    names: list[str] = []
    while (db / shard_name(len(names)) / "train.idx").is_file():
        names.append(shard_name(len(names)))
    return names


def _is_data_file(name: str) -> bool:
    """dict.txt or a .bin/.idx at the top of the data-bin or directly inside a shard directory (never the tokenizer's
    own files, which live in tokenizer/)."""
    parent, _, base = name.rpartition("/")
    return (parent == "" or _SHARD_DIR.fullmatch(parent) is not None) and (
        base == "dict.txt" or base.endswith((".bin", ".idx")))


def data_files(data_bin: Path, names: list[str] | None = None) -> list[str]:
    """The files of ``data_bin`` that fairseq's masked_lm task reads, sorted (relative names: ``shard<k>/train.bin``
    for a sharded data-bin's; a one-directory data-bin's list is what it always was)."""
    if names is None:
        names = [p.name for p in data_bin.iterdir() if p.is_file()]
        names += [f"{d.name}/{p.name}" for d in data_bin.iterdir() if d.is_dir() and _SHARD_DIR.fullmatch(d.name)
                  for p in d.iterdir() if p.is_file()]
    return sorted(n for n in names if _is_data_file(n))


def data_fingerprint(data_bin: str | Path) -> str:
    """sha256 over (name, sha256) of dict.txt and every .bin/.idx (every shard's, for a sharded data-bin). Uses the
    hashes the preprocess manifest already holds when the data-bin is complete (no re-hashing of GBs); hashes the
    files otherwise."""
    db = Path(data_bin)
    m = read_manifest(db)
    outputs = (m or {}).get("outputs", {})
    if outputs:
        hashes = {n: outputs[n]["sha256"] for n in data_files(db, list(outputs))}
    else:
        hashes = {n: sha256_file(db / n) for n in data_files(db)}
    h = hashlib.sha256()
    for name, digest in sorted(hashes.items()):
        h.update(f"{name}\0{digest}\n".encode())
    return "data:" + h.hexdigest()
