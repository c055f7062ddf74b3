"""The train/valid/test splits as a Hugging Face dataset: ``split/hf/{train,valid,test}.parquet``.

One row per document, in the order of the ``.txt`` files: ``id`` (string; the id the split hashed), ``title``
(string, null where the source has none: plain text, or a dataset without a ``title`` column) and ``sentences``
(list of strings: the document's lines in the ``.txt`` file); a corpus built from several sources (top-level
``sources:``) adds ``source`` (string: the source's name), and its train file holds a document as many times as
the source's weight writes it to train.txt. Read it with
``datasets.load_dataset("parquet", data_files={"train": "split/hf/train.parquet", ...})``.

The files are part of the split step's output (written in its temporary directory, hashed in its manifest), so
they must be byte-identical for identical documents, whatever the shard or worker count. pyarrow's Parquet writer
is deterministic given the same rows, the same row-group boundaries and the same writer options (it writes no
timestamp; ``created_by`` is the pinned pyarrow's version string). So the options are fixed here rather than left
to pyarrow's defaults, and a row group ends after :data:`ROWS` documents or :data:`CHARS` characters, counted
over the split's documents in order — a function of the data alone (tests/corpus/test_hf_sources.py checks bytes
across shard counts and reruns).
"""

from __future__ import annotations

from pathlib import Path

ROWS = 1000  # documents per row group: datasets streams a Parquet file one row group at a time
CHARS = 32 << 20  # ...or fewer when they hold this many characters, so a row group stays ~100 MB at most in memory
#: written into the split step's config, so a split directory made before these files existed is redone, not reused
FORMAT_VERSION = 1


class SplitParquetWriter:
    """Streams documents of one split into ``path`` (a Parquet file with the schema in the module docstring)."""

    def __init__(self, path: Path, *, with_source: bool = False):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa, self._pq, self.path = pa, pq, path
        # the source column only where there are several: a single source's files keep their bytes
        fields = [("id", pa.string()), ("title", pa.string()), ("sentences", pa.list_(pa.string()))]
        self.schema = pa.schema(fields + [("source", pa.string())] if with_source else fields)
        self._sources: list[str | None] | None = [] if with_source else None
        self._writer = None  # opened at the first document: a split without documents gets no file (see close)
        self._ids: list[str] = []
        self._titles: list[str | None] = []
        self._sentences: list[list[str]] = []
        self._chars = 0
        self.rows = 0

    def add(self, doc_id: str, title: str | None, sentences: list[str], chars: int, *,
            source: str | None = None) -> None:
        if self._sources is not None:
            self._sources.append(source)
        self._ids.append(doc_id)
        self._titles.append(title or None)
        self._sentences.append(sentences)
        self._chars += chars
        self.rows += 1
        if len(self._ids) >= ROWS or self._chars >= CHARS:
            self._flush()

    def _flush(self) -> None:
        if not self._ids:
            return
        if self._writer is None:
            # every option that shapes the bytes, spelled out: a new pyarrow default must not change them silently
            self._writer = self._pq.ParquetWriter(str(self.path), self.schema, compression="zstd",
                                                  compression_level=3, use_dictionary=False, write_statistics=True,
                                                  version="2.6", data_page_version="1.0", store_schema=True,
                                                  write_page_index=False)
        cols = {"id": self._ids, "title": self._titles, "sentences": self._sentences}
        if self._sources is not None:
            cols["source"] = self._sources
            self._sources = []
        table = self._pa.table(cols, schema=self.schema)
        self._writer.write_table(table, row_group_size=len(self._ids))  # exactly one row group per flush
        self._ids, self._titles, self._sentences, self._chars = [], [], [], 0

    def close(self) -> None:
        """Write the last row group and the footer. A split without documents (e.g. ``test_fraction: 0``) gets no
        file: ``datasets`` refuses a Parquet file without rows ("Instruction 'test' corresponds to no data"), and
        ``load_dataset("parquet", data_dir=...)`` then simply has no such split."""
        self._flush()
        if self._writer is not None:
            self._writer.close()
