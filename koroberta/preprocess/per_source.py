"""What a multi-source corpus split adds to the data-bin: one validation subset per source and each source's share
of the train tokens.

A corpus built from several sources (top-level ``sources:``) writes, next to ``valid.txt``, each source's own valid
documents as ``valid_<name>.txt`` (:func:`koroberta.corpus.steps.split`). preprocess binarizes each into the fairseq
subset ``valid_<name>`` (``valid_<name>.bin/.idx``), so that ``fairseq-train --valid-subset valid,valid_<name>,...``
reports a loss per domain. The name keeps fairseq's own multi-subset convention out of the way: ``valid1``,
``valid2``, ... would be *combined* into ``valid`` by masked_lm's ``load_dataset``, and fairseq-train refuses to
start when ``valid<digit>*`` files lie in the data-bin without being named in ``--valid-subset``.

The train shares need no second encoding: the train ``.idx`` has one item per line of train.txt, a blank line (the
separator between documents) is the single token ``</s>``, and a sentence is never empty, so documents are the runs
of items longer than one token, in train.txt's order -- which is the row order of ``hf/train.parquet``, whose
``source`` column names each document's source.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from koroberta.artifacts import read_manifest
from koroberta.errors import InputError

log = logging.getLogger("koroberta.preprocess")
#: a source name as the corpus config allows it; a name with "," would split fairseq's --valid-subset list
_NAME = re.compile(r"[^\s,:/]+")


def subset_name(source: str) -> str:
    """The data-bin prefix / fairseq subset of a source's valid documents."""
    return f"valid_{source}"


def source_valid_texts(split_dir: Path) -> dict[str, Path]:
    """``{source: split_dir/valid_<source>.txt}``, sorted by name, of a multi-source split; ``{}`` for one source.

    The split's manifest names the sources when there is one (a complete corpus split): each listed source must
    have its file, and a single-source split has none, so a single source is never read differently from before.
    A split directory made elsewhere (no manifest) has the sources whose ``valid_<name>.txt`` files it holds.
    """
    m = read_manifest(split_dir)
    if m is not None:
        names = sorted((m.get("stats") or {}).get("sources") or {})
        for n in names:
            if not (split_dir / f"{subset_name(n)}.txt").is_file():
                raise InputError(f"{subset_name(n)}.txt not found, though the split's manifest lists source {n!r}",
                                 path=split_dir, fix="rerun the corpus split (`koroberta corpus split --force`, or "
                                                     "`koroberta run`): it writes one valid_<name>.txt per source")
    else:
        names = sorted(p.name[len("valid_"):-len(".txt")] for p in split_dir.glob("valid_*.txt") if p.is_file())
    for n in names:
        check_source_name(n, split_dir)
    return {n: split_dir / f"{subset_name(n)}.txt" for n in names}


def check_source_name(name: str, where: Path) -> None:
    """Refuse a source name that fairseq's comma-separated ``--valid-subset`` list (or a path) cannot carry."""
    if not _NAME.fullmatch(name):
        raise InputError(f"source name {name!r} (file {subset_name(name)}.*) is empty or holds whitespace, ',', ':' "
                         f"or '/', which fairseq's --valid-subset list cannot carry", path=where,
                         fix="rename the source (and its valid_<name> file) without those characters")


def has_text(path: Path) -> bool:
    """Whether ``path`` holds a non-blank line: a source without valid documents has an empty file, and gets no
    subset (fairseq cannot validate on an empty one). Reads up to the first non-blank line -- usually the first."""
    with open(path, "rb") as f:
        return any(line.strip() for line in f)


def document_tokens(sizes: np.ndarray) -> np.ndarray:
    """Tokens of each document of a split's items ``sizes`` (one item per line): a document is a maximal run of
    items longer than one token (a blank line is the lone ``</s>``). Each sentence's own ``</s>`` counts -- fairseq
    trains on it like any token -- while the separators between documents belong to no document."""
    sizes = np.asarray(sizes, dtype=np.int64)
    if not len(sizes):
        return np.zeros(0, dtype=np.int64)
    in_doc = sizes > 1
    starts = in_doc & ~np.concatenate([[False], in_doc[:-1]])
    doc = np.cumsum(starts) - 1  # the document index of every item inside one
    return np.bincount(doc[in_doc], weights=sizes[in_doc], minlength=int(starts.sum())).astype(np.int64)


def _document_sources(parquet: Path, names: list[str]) -> np.ndarray | str:
    """The index in ``names`` of every row's ``source`` of ``parquet`` (only that column is read), or why not."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ImportError:
        return "pyarrow is not installed"
    f = pq.ParquetFile(parquet)
    if "source" not in f.schema_arrow.names:
        return f"{parquet.name} has no source column"
    parts = []
    known = pa.array(names, type=pa.string())
    for batch in f.iter_batches(columns=["source"], batch_size=1 << 16):
        idx = pc.index_in(batch.column(0), value_set=known)
        if idx.null_count:
            return f"{parquet.name} names a source the split does not list ({', '.join(names)})"
        parts.append(idx.to_numpy(zero_copy_only=False))
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


def train_shares(train_sizes: np.ndarray, parquet: Path, names: list[str]) -> tuple[dict[str, dict[str, Any]] | None,
                                                                                   str | None]:
    """``({source: {"train_tokens", "share"}}, None)`` from the train items' sizes and ``hf/train.parquet``, or
    ``(None, why not)``: no Parquet file (a split made elsewhere), no source column, or a row count that does not
    match the documents in the data-bin (a sentence that encoded to no piece at all looks like a separator). Shares
    are of the tokens inside documents (see :func:`document_tokens`); a source without train documents has 0."""
    if not parquet.is_file():
        return None, f"no {parquet.parent.name}/{parquet.name} in the split directory"
    sources = _document_sources(parquet, names)
    if isinstance(sources, str):
        return None, sources
    tokens = document_tokens(train_sizes)
    if len(tokens) != len(sources):
        return None, (f"train.bin holds {len(tokens):,} documents but {parquet.name} {len(sources):,} rows, so rows "
                      f"cannot be matched to documents")
    per = np.bincount(sources, weights=tokens, minlength=len(names)).astype(np.int64)
    total = int(per.sum())
    return {n: {"train_tokens": int(per[i]), "share": round(int(per[i]) / total, 6) if total else 0.0}
            for i, n in enumerate(names)}, None


def describe_shares(shares: dict[str, dict[str, Any]]) -> str:
    """``kowiki 1,234 (61.7%), news 766 (38.3%)``: the log / CLI line."""
    return ", ".join(f"{n} {s['train_tokens']:,} ({100 * s['share']:.1f}%)" for n, s in shares.items())
