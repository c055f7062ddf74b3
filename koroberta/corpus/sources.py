"""Readers for every accepted source: MediaWiki XML dumps (``.xml.bz2``/``.xml``/``.xml.xz``/``.xml.gz``),
WikiExtractor output (a directory of ``wiki_NN`` files or one file, optionally ``.xz``/``.bz2``), plain text
(``documents: blank``, the default: a blank line between documents; ``documents: line``: one document per line; a
document over :data:`MAX_DOC_CHARS` characters is refused as a file without document breaks), and Hugging Face
``datasets`` data on disk: a ``save_to_disk`` directory, or Parquet / JSON Lines files (one file or a directory of
them) with a ``text`` column (one document per row, one paragraph per line) and optional ``id`` / ``title`` columns,
read through ``datasets`` (see :func:`iter_hf`).

All readers yield :class:`RawPage` in source order with a running ordinal ``ord`` (used for sharding: shard ``i`` of
``n`` handles ordinals ``ord % n == i``, so any shard count sees the same pages in the same order; a multistream
dump with its index is read one run of bz2 streams per shard instead, its pages numbered as in the whole dump --
:func:`iter_dump`, :mod:`koroberta.corpus.multistream`). Bad input
raises :class:`~koroberta.errors.InputError` naming the file and the fix; a truncated compressed stream reports how
far it got.
"""

from __future__ import annotations

import bz2
import codecs
import contextlib
import functools
import gzip
import logging
import lzma
import os
import pyexpat
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Callable, Iterator

from koroberta import encoding as enc
from koroberta.config import available_cpus
from koroberta.errors import ConfigError, DependencyError, InputError

if TYPE_CHECKING:
    from koroberta.corpus.multistream import StreamRange

log = logging.getLogger("koroberta.corpus")

_MAGIC = {b"BZh": "bz2", b"\xfd7zXZ\x00": "xz", b"\x1f\x8b": "gz"}


@dataclass
class RawPage:
    ord: int
    id: str
    title: str
    ns: int
    text: str
    redirect: bool = False
    clean: bool = False  # text is already plain (WikiExtractor / plain text): no wikitext cleaning


@dataclass
class ReadStats:
    """Counters a reader fills while streaming (the caller reads them after the iteration)."""

    pages: int = 0
    invalid_utf8: int = 0
    dbname: str | None = None
    compressed_bytes: int | None = None  # bytes of a dump file decoded (a multistream shard: its own streams)


def compression_of(path: Path) -> str | None:
    with open(path, "rb") as f:
        head = f.read(6)
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            return kind
    return None


def open_binary(path: Path) -> IO[bytes]:
    kind = compression_of(path)
    if kind == "bz2":
        return bz2.open(path, "rb")
    if kind == "xz":
        return lzma.open(path, "rb")
    if kind == "gz":
        return gzip.open(path, "rb")
    return open(path, "rb")


def _peek_text(path: Path, n: int = 4096) -> bytes:
    try:
        with open_binary(path) as f:
            return f.read(n)
    except (EOFError, OSError, lzma.LZMAError) as e:
        raise InputError(f"truncated or corrupt {compression_of(path)} stream: nothing decodable in its "
                         f"{path.stat().st_size / 1e6:.1f} MB (0 pages read: {e})", path=path,
                         fix="re-download the file (`koroberta corpus download` resumes and verifies it)") from None


def detect_format(path: Path) -> str:
    """``dump`` | ``wikiextractor`` | ``text`` | ``nsmc`` | ``hf_disk`` | ``parquet`` | ``jsonl`` for a file or
    directory (``nsmc``: a TSV whose header names ``id`` and ``document`` columns).

    A directory is a ``save_to_disk`` dataset (its ``state.json`` + ``dataset_info.json``, or ``dataset_dict.json``),
    a directory of Parquet or JSON Lines files (other files next to them, e.g. a dataset repo's README.md, are
    ignored), or WikiExtractor output / text files -- one kind only, every file checked (:func:`_dir_kind`). A file
    is Parquet by its ``PAR1`` magic or ``.parquet`` name, JSON Lines by its ``.jsonl``/``.json``/``.ndjson`` name
    (content cannot tell JSON Lines from text); binary data (an image, an archive) is refused, not read as text.
    """
    if path.is_dir():
        if (path / "dataset_dict.json").is_file() or ((path / "state.json").is_file()
                                                      and (path / "dataset_info.json").is_file()):
            return "hf_disk"
        _refuse_stage_output(path)
        kinds = {k for k in map(_hf_file_kind, list_dir_files(path)) if k}
        if len(kinds) > 1:
            raise InputError("directory holds both Parquet and JSON Lines files", path=path,
                             fix="put the files of one dataset, in one format, in a directory of their own")
        if kinds:
            return kinds.pop()
        files = list_dir_files(path)
        if not files:
            raise InputError("directory holds no input files", path=path,
                             fix="point at a WikiExtractor output directory, a text file, or a dataset "
                                 "(save_to_disk directory, Parquet or JSON Lines files)")
        return _dir_kind(path, files)
    if not path.is_file():
        raise InputError("source not found", path=path, fix="pass an existing dump, WikiExtractor output or text file")
    kind, what = _sniff(path)
    if kind == "empty":
        raise InputError("empty file", path=path, fix="re-download the dump (`koroberta corpus download`)")
    if kind == "xml":
        raise InputError("XML but not a MediaWiki export (no <mediawiki> root)", path=path,
                         fix="use a pages-articles dump from dumps.wikimedia.org")
    if kind == "not_xml":
        raise InputError("not XML (expected a MediaWiki pages-articles dump)", path=path,
                         fix="check the file: it may be an HTML error page or another format; re-download it")
    if kind == "binary":
        raise InputError(f"{what}, not text", path=path, fix=_FIX_BINARY)
    return kind


_HEAD = 4096  # bytes of (decompressed) head that classify a file: bounded cost per file, however large
#: binary formats a user may drop into a text directory by mistake, by their magic number (most also hold NUL bytes
#: early, but not always within the head of, e.g., a PDF)
_BINARY_MAGIC = ((b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF87a", "a GIF image"),
                 (b"GIF89a", "a GIF image"),
                 (b"%PDF-", "a PDF document"), (b"PK\x03\x04", "a ZIP archive (or .docx/.xlsx/.pt)"),
                 (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"), (b"\x28\xb5\x2f\xfd", "a Zstandard-compressed file"),
                 (b"\x7fELF", "an executable"), (b"\x80\x02", "a Python pickle / PyTorch file"))
_FIX_BINARY = ("pass a MediaWiki dump (.xml.bz2), WikiExtractor output, UTF-8 plain text (optionally .bz2/.xz/.gz "
               "compressed) or a dataset (save_to_disk directory, Parquet or JSON Lines files)")
#: what a directory of each readable kind holds, for the error naming a file of another kind
_DIR_WORDS = {"text": "plain text files", "wikiextractor": "WikiExtractor output files", "dump": "MediaWiki dumps",
              "nsmc": "NSMC-style TSV files"}


def _sniff(path: Path) -> tuple[str, str]:
    """(kind, the kind in words) of one file, from its name and its first :data:`_HEAD` bytes after decompression.

    Kinds: those :func:`detect_format` returns for a file, plus ``empty``, ``binary`` (a known binary magic, a
    UTF-16 byte-order mark, or a NUL byte in the head -- git's test for binary: text never holds NUL), ``xml``
    (XML that is not a MediaWiki export) and ``not_xml`` (an ``.xml`` name over something else).
    """
    if path.stat().st_size == 0:
        return "empty", "an empty file"
    with open(path, "rb") as f:
        if f.read(4) == b"PAR1":
            return "parquet", "a Parquet file"
    if _hf_file_kind(path):  # by name: a damaged .parquet is reported by the reader, which names what is wrong
        kind = _hf_file_kind(path)
        return kind, "a Parquet file" if kind == "parquet" else "a JSON Lines file"  # type: ignore[return-value]
    raw = _peek_text(path, _HEAD)
    if not raw:
        return "empty", f"an empty {compression_of(path)} stream"
    head = raw.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<mediawiki") or (head.startswith(b"<?xml") and b"<mediawiki" in head):
        return "dump", "a MediaWiki XML dump"
    if head.startswith(b"<doc "):
        return "wikiextractor", "WikiExtractor output"
    if head.startswith(b"<?xml") or (head.startswith(b"<") and path.name.endswith((".xml", ".xml.bz2"))):
        return "xml", "XML that is not a MediaWiki export"
    if ".xml" in path.name:
        return "not_xml", "a file named .xml that is not XML"
    for magic, what in _BINARY_MAGIC:
        if raw.startswith(magic):
            return "binary", what
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "binary", f"UTF-16 text (byte-order mark {raw[:2].hex(' ')}), not UTF-8"
    if b"\0" in raw:
        return "binary", f"binary data (a NUL byte at offset {raw.index(bytes(1))}; or UTF-16/32 text, not UTF-8)"
    if _is_nsmc_header(raw.split(b"\n", 1)[0]):
        return "nsmc", "an NSMC-style TSV"
    return "text", "plain text"


def _is_nsmc_header(line: bytes) -> bool:
    """The header of an NSMC-style TSV (``id<TAB>document<TAB>label``): tab-separated, with ``id`` and ``document``
    columns. A text line with those two exact tab-separated words is implausible; a review file is not."""
    cols = line.lstrip(b"\xef\xbb\xbf").rstrip(b"\r").split(b"\t")
    return len(cols) >= 2 and b"id" in cols and b"document" in cols


def _refuse_stage_output(path: Path) -> None:
    """A koroberta output directory (a run's corpus dir, its split/, a data-bin) is no corpus source: its
    manifest.json files would be read as JSON Lines, its .txt splits, .parquet and .png report next to them as one
    mixed source. Its own text is reused by passing a file of it."""
    from koroberta.artifacts import owner_of, stage_outputs_under

    owner = owner_of(path)
    below = stage_outputs_under(path) if owner is None else []
    if owner is None and not below:
        return
    what = (f"the output of koroberta's {owner} stage" if owner is not None
            else f"a directory of koroberta outputs ({below[0][0].relative_to(path)}: {below[0][1]})")
    raise InputError(f"{what}, not a corpus source", path=path,
                     fix="pass the source a corpus is built from (a dump, WikiExtractor output, text files or a "
                         "dataset); to build on a corpus's text, pass one of its files (e.g. split/train.txt)")


def _dir_kind(path: Path, files: list[Path]) -> str:
    """The one kind of every file of a WikiExtractor / plain-text directory (an empty file fits any).

    A directory is read with one reader, so each file is sniffed (its first 4 KB, decompressed: ~30 ms for a
    ``.bz2`` file, whose first block must be decoded whole): a dump, an image or WikiExtractor output among text
    files would be read as text -- raw XML and binary included -- and text among WikiExtractor files would be
    skipped silently. The error names the first file of another kind than the first readable file's.
    """
    if len(files) > 16:  # bz2/lzma/zlib decode outside the GIL: thousands of compressed files in seconds
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(8, available_cpus())) as pool:
            sniffed = list(pool.map(_sniff, files))
    else:
        sniffed = [_sniff(f) for f in files]
    found = [(f, kind, what) for f, (kind, what) in zip(files, sniffed) if kind != "empty"]
    if not found:
        raise InputError(f"directory holds only empty files ({len(files)})", path=path,
                         fix="point at the directory that holds the text or WikiExtractor output")
    # the kind the directory is taken to hold: its first text or WikiExtractor file's, else its first dump's
    first = next((x for x in found if x[1] in ("text", "wikiextractor", "nsmc")),
                 next((x for x in found if x[1] == "dump"), found[0]))
    if first[1] not in _DIR_WORDS:
        return detect_format(first[0])  # raises the file's own error (binary, not-MediaWiki XML, ...)
    other = next((x for x in found if x[1] != first[1]), None)
    if other is not None:
        f, _, what = other
        raise InputError(f"{what} among the {_DIR_WORDS[first[1]]} of {path} (first: {first[0].name}), which are "
                         "all read with one reader", path=f,
                         fix=f"put one kind of input per directory: move {f.name} out of {path} (all plain text, "
                             "optionally .bz2/.xz/.gz, or all WikiExtractor output; a dump is passed as a file of "
                             "its own)")
    return first[1]


def list_dir_files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file() and not any(x.startswith(".") for x in p.relative_to(path).parts))


_HF_SUFFIXES = {".parquet": "parquet", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl"}


def _hf_file_kind(path: Path) -> str | None:
    return _HF_SUFFIXES.get(path.suffix.lower())


def _open_dump(path: Path, kind: str | None, threads: int,
               stack: contextlib.ExitStack) -> tuple[IO[bytes], Callable[[], int]]:
    """The decompressed stream of a dump (closed with ``stack``) and a function giving the compressed bytes read.

    ``.bz2`` goes through ``indexed_bzip2`` when it is installed (a dependency; the stdlib decoder is the
    fallback): it decodes bzip2 blocks in ``threads`` threads and is faster even on one: 4.0-4.2 vs 4.9-5.3 CPU-s
    for the 20k-page bench dump (32.7 MB bz2; three interleaved runs each), 2.0 s wall with 2 threads. Decoding
    is the part of extraction that worker processes cannot share, so on a many-core node it bounds the step's wall
    time. Both decoders give the same bytes and both raise on a truncated or corrupt stream.
    """
    if kind == "bz2":
        fast = _fast_bz2(str(path), threads, stack)
        if fast is not None:
            return fast, lambda: fast.tell_compressed() // 8
    raw = stack.enter_context(open(path, "rb"))
    if kind == "bz2":
        return stack.enter_context(bz2.BZ2File(raw)), raw.tell
    if kind == "xz":
        return stack.enter_context(lzma.LZMAFile(raw)), raw.tell
    if kind == "gz":
        return stack.enter_context(gzip.GzipFile(fileobj=raw)), raw.tell  # type: ignore[return-value]
    return raw, raw.tell


def _fast_bz2(source: "str | IO[bytes]", threads: int, stack: contextlib.ExitStack) -> IO[bytes] | None:
    """``indexed_bzip2`` on a path or a file object, decoding in ``threads`` threads (closed with ``stack``); None
    when it is not installed or the stdlib decoder is forced (the caller falls back to ``bz2``)."""
    if _FORCE_STDLIB_BZ2:
        return None
    try:
        import indexed_bzip2
    except ImportError:
        return None
    threads = max(1, min(threads, available_cpus()))  # more threads than cores only adds switching
    return stack.enter_context(contextlib.closing(indexed_bzip2.open(source, parallelization=threads)))


_FORCE_STDLIB_BZ2 = False  # tests flip this to cover the fallback decoder
_DECODE_ERRORS = (EOFError, OSError, lzma.LZMAError, RuntimeError)  # RuntimeError: indexed_bzip2 on a bad stream


class _PageCollector:
    """pyexpat callbacks that turn the event stream into :class:`RawPage` fields.

    Why not ``ElementTree.XMLPullParser``: it builds an Element per tag and queues (event, element) tuples: 2.9 CPU-s
    of parsing on the 20k-page bench dump (137 MB of XML). Bare expat with these callbacks takes ~1.5 s and is
    just as strict (it is the same expat). Character data is collected by a C ``list.append`` installed as the
    data handler only while inside a wanted leaf (title, ns, id, text, dbname), so the whitespace between the
    ~17 elements of a page never reaches Python. Element names are ``"<namespace URI>}<local>"``
    (``namespace_separator="}"``), so the part after the last ``}`` is the local name, as in ``ElementTree``.

    Page fields follow the export schema: ``title``/``ns``/``id``/``redirect`` are children of ``<page>``; the text
    is ``<revision><text>`` (the last revision's, if a dump holds several).
    """

    def __init__(self, parser: "pyexpat.XMLParserType", path: Path, dbname: str):
        self.parser, self.path, self.dbname = parser, path, dbname
        self.depth = 0  # element depth: 1 = <mediawiki>, 2 = <siteinfo>/<page>, 3 = page children, ...
        self.root: str | None = None
        self.in_page = False
        self.in_revision = False
        self.field: str | None = None  # the leaf whose character data is being collected
        self.buf: list[str] = []
        self.cur: dict[str, object] = {}
        self.done: list[dict[str, object]] = []
        self.dbname_seen: str | None = None
        self._names: dict[str, str] = {}
        parser.StartElementHandler = self.start
        parser.EndElementHandler = self.end

    def _collect(self, field: str) -> None:
        self.field, self.buf = field, []
        self.parser.CharacterDataHandler = self.buf.append

    def start(self, name: str, attrs: dict) -> None:
        self.depth += 1
        local = self._names.get(name)
        if local is None:
            local = self._names[name] = name.rsplit("}", 1)[-1]
        depth = self.depth
        if self.in_page:
            if depth == 3:
                if local in ("title", "ns", "id"):
                    self._collect(local)
                elif local == "redirect":
                    self.cur["redirect"] = True
                elif local == "revision":
                    self.in_revision = True
            elif depth == 4 and self.in_revision and local == "text":
                self._collect("text")
        elif depth == 2:
            if local == "page":
                self.in_page, self.cur = True, {}
        elif depth == 1:
            self.root = local
            if local != "mediawiki":
                raise InputError(f"XML root is <{local}>, not <mediawiki>", path=self.path,
                                 fix="use a pages-articles dump from dumps.wikimedia.org")
        elif depth == 3 and local == "dbname":
            self._collect("dbname")

    def end(self, name: str) -> None:
        self.depth -= 1
        if self.field is not None:
            self.parser.CharacterDataHandler = None  # flushes expat's buffered text into self.buf first
            field, self.field = self.field, None
            value = "".join(self.buf)
            if field == "dbname":
                self._check_dbname(value.strip())
            else:
                self.cur[field] = value
        elif self.depth == 1 and self.in_page:
            self.in_page = False
            self.done.append(self.cur)
        elif self.depth == 2 and self.in_revision:
            self.in_revision = False

    def _check_dbname(self, seen: str) -> None:
        self.dbname_seen = seen
        if self.dbname and seen != self.dbname:
            raise InputError(f"dump of '{seen}', expected '{self.dbname}'", path=self.path,
                             fix=f"use a {self.dbname} dump, or pass --dbname {seen} (or --dbname '') to accept it")
        if not self.dbname and seen != "kowiki":
            log.warning("%s: dump of '%s', not kowiki (accepted because --dbname '')", self.path, seen)


def _raw_page(fields: dict[str, object], ordinal: int) -> RawPage:
    try:
        ns = int(fields.get("ns") or 0)  # type: ignore[call-overload]
    except ValueError:
        ns = -999
    pid = str(fields.get("id", "")).strip()
    return RawPage(ord=ordinal, id=pid or f"ord{ordinal}", title=str(fields.get("title", "")), ns=ns,
                   text=str(fields.get("text", "")), redirect=bool(fields.get("redirect", False)))


def iter_dump(path: Path, stats: ReadStats, *, dbname: str = "kowiki", decompress_threads: int = 1,
              streams: "StreamRange | None" = None) -> Iterator[RawPage]:
    """Stream the ``<page>`` elements of a MediaWiki export (expat: C speed, full well-formedness checking).
    ``decompress_threads`` > 1 decodes a ``.bz2`` dump in parallel (see :func:`_open_dump`).

    ``streams`` (a :class:`~koroberta.corpus.multistream.StreamRange` of a multistream dump): decode only the
    header stream and that range of streams (plus a ``</mediawiki>`` of our own where the range stops before the
    file's last stream), give the pages their ordinals in the whole dump (``streams.ord_base`` onwards), and check
    them against the index: the same page ids in the same order, as many as it lists. ``stats.compressed_bytes``:
    the bytes of the file decoded."""
    kind = compression_of(path)
    parser = pyexpat.ParserCreate(namespace_separator="}")
    parser.buffer_text = True  # one data callback per text run, not one per line / entity
    parser.buffer_size = 1 << 20
    pages = _PageCollector(parser, path, dbname)
    ordinal = first = streams.ord_base if streams is not None else 0
    ids = streams.page_ids if streams is not None else None
    with contextlib.ExitStack() as stack:
        try:
            if streams is None:
                stream, consumed = _open_dump(path, kind, decompress_threads, stack)
            else:
                stream, consumed = _open_streams(streams, decompress_threads, stack)
        except _DECODE_ERRORS as e:
            raise InputError(f"cannot open the {kind} stream ({e})", path=path,
                             fix="re-download it with `koroberta corpus download` and verify the checksum") from None
        tail = b"" if streams is None or streams.to_eof else b"</mediawiki>\n"
        while True:
            try:
                chunk = stream.read(1 << 20)
            except _DECODE_ERRORS as e:
                raise _decode_error(path, kind, e, consumed(), ordinal - first, streams) from None
            if not chunk:
                if not tail:
                    break
                chunk, tail = tail, b""  # the range ends before </mediawiki>: close the document expat sees
            try:
                parser.Parse(chunk, False)
            except pyexpat.ExpatError as e:
                if streams is not None:
                    raise _index_mismatch(streams, f"the XML of bytes {streams.start:,}-{streams.end:,} is not "
                                                   f"well-formed ({e}) after {ordinal - first:,} pages") from None
                raise InputError(f"not well-formed XML ({e}; {ordinal + len(pages.done):,} pages read)", path=path,
                                 fix="the file is damaged or not a MediaWiki dump; re-download it") from None
            stats.dbname = pages.dbname_seen
            done, pages.done = pages.done, []
            for fields in done:
                page = _raw_page(fields, ordinal)
                if ids is not None:
                    _check_indexed(streams, ids, ordinal - first, str(fields.get("id", "")).strip())
                ordinal += 1
                stats.pages = ordinal - first
                yield page
        try:
            parser.Parse(b"", True)
        except pyexpat.ExpatError as e:
            if streams is not None:
                raise _index_mismatch(streams, f"the XML of bytes {streams.start:,}-{streams.end:,} ends early ({e}) "
                                               f"after {ordinal - first:,} pages") from None
            raise InputError(f"XML ends early ({e}; {ordinal:,} pages read)", path=path,
                             fix="the dump is truncated; re-download it with `koroberta corpus download`") from None
        stats.compressed_bytes = consumed()
    if pages.root is None:
        raise InputError("empty dump (no XML content)", path=path, fix="re-download the dump")
    if ids is not None:
        if ordinal - first != len(ids):
            raise _index_mismatch(streams, f"the index lists {len(ids):,} pages in bytes {streams.start:,}-"
                                           f"{streams.end:,}, the dump holds {ordinal - first:,} there")
        return
    if not ordinal:
        raise InputError("dump holds no <page> elements", path=path,
                         fix="use a pages-articles dump (this may be a stub or siteinfo-only file)")


def _open_streams(streams: "StreamRange", threads: int,
                  stack: contextlib.ExitStack) -> tuple[IO[bytes], Callable[[], int]]:
    """The decompressed header stream + range of streams of a multistream dump, and the compressed bytes read.

    The decoders read a :class:`~koroberta.corpus.multistream.SegmentReader`: a concatenation of whole bz2 streams
    is a valid multi-stream ``.bz2``. ``indexed_bzip2`` takes it as a file object, ``threads`` as for a whole dump
    (:func:`_open_dump`; bench/results/multistream.md compares it with the stdlib decoder, the fallback)."""
    from koroberta.corpus.multistream import SegmentReader

    raw = stack.enter_context(SegmentReader(streams.dump, [(0, streams.header_end), (streams.start, streams.end)]))
    fast = _fast_bz2(raw, threads, stack)
    return (fast if fast is not None else stack.enter_context(bz2.BZ2File(raw))), lambda: raw.bytes_read


def _decode_error(path: Path, kind: str | None, e: BaseException, at: int, pages_read: int,
                  streams: "StreamRange | None") -> InputError:
    reason = str(e)
    if streams is not None:  # an offset of the index that is no stream start decodes as garbage
        return _index_mismatch(streams, f"the bytes {streams.start:,}-{streams.end:,} it names do not decode as bz2 "
                                        f"streams ({reason or type(e).__name__}; {pages_read:,} pages read)")
    size = path.stat().st_size
    if reason in ("", "std::exception"):  # indexed_bzip2 says no more than this on a cut-off stream
        reason = "the data ends before the end-of-stream marker" if at >= size else "damaged data"
    return InputError(f"truncated or corrupt {kind} stream after {at / 1e6:.1f} MB of {size / 1e6:.1f} MB "
                      f"({pages_read:,} pages read: {reason})", path=path,
                      fix="re-download it with `koroberta corpus download` (it resumes) and verify the checksum")


def _index_mismatch(streams: "StreamRange", what: str) -> InputError:
    from koroberta.corpus.multistream import FIX_INDEX

    return InputError(f"stream index does not fit {streams.dump.name}: {what}", path=streams.index, fix=FIX_INDEX)


def _check_indexed(streams: "StreamRange", ids: list[str], k: int, pid: str) -> None:
    """Page ``k`` of the range has the id the index lists for it (a page past the listed ones is a mismatch)."""
    if k < len(ids) and ids[k] == pid:
        return
    at, n = streams.end, 0
    for off, cnt in streams.streams:  # the stream the index places page k in, for the message
        if k < n + cnt:
            at = off
            break
        n += cnt
    want = f"page id {ids[k]}" if k < len(ids) else f"only {len(ids):,} pages"
    raise _index_mismatch(streams, f"page {k + 1:,} of bytes {streams.start:,}-{streams.end:,} has id {pid or '?'} "
                                   f"in the dump, the index lists {want} (stream at byte {at:,})")


def _decode_lines(path: Path, stats: ReadStats, encoding: str = enc.UTF8) -> Iterator[str]:
    """Lines of a (possibly compressed) text file, each with its ``\\n``. UTF-8 (the default): invalid sequences are
    replaced with U+FFFD and counted while the file stays within the allowance of :mod:`koroberta.encoding`; past
    it, or when its bad lines read as CP949, the file is refused (:class:`~koroberta.encoding.Utf8Guard`), so a file
    bad only after the sample :func:`check_source_encoding` read is not repaired into mojibake either. Another codec
    (``encoding:``): decoded strictly; a byte that does not decode is an error naming its offset."""
    try:
        with open_binary(path) as f:
            if not enc.is_utf8(encoding):
                # the bound of the UTF-8 path below, in characters: a line-less file is never held whole either
                yield from enc.iter_decoded_lines(f, encoding, path, max_line_chars=MAX_DOC_CHARS + 1,
                                                  too_long=lambda n: _line_too_long(path, n, f"{MAX_DOC_CHARS:,} "
                                                                                             "characters"))
                return
            guard = None
            # readline with a limit, not `for raw in f`: a file without line breaks would otherwise be read into
            # memory whole as one line before anything could look at it (+15 ms per 100 MB of text, measured)
            for lineno, raw in enumerate(iter(functools.partial(f.readline, _LINE_LIMIT), b""), 1):
                if len(raw) == _LINE_LIMIT and not raw.endswith(b"\n"):
                    raise _line_too_long(path, lineno, f"{_LINE_LIMIT / 1e6:.0f} MB")
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError:
                    if guard is None:  # made at the first bad line: a clean file pays nothing
                        guard = enc.Utf8Guard(path, path.stat().st_size, option="encoding",
                                              compression=compression_of(path))
                    line, n = guard.repair(raw, lineno=lineno, offset=f.tell() - len(raw))
                    stats.invalid_utf8 += n
                    yield line
    except (EOFError, lzma.LZMAError, OSError) as e:
        raise InputError(f"truncated or corrupt compressed file ({e})", path=path,
                         fix="re-create or re-download it") from None


def _line_too_long(path: Path, lineno: int, bound: str) -> InputError:
    return InputError(f"line {lineno:,} runs over {bound} without a line break, more than any document may hold "
                      f"({MAX_DOC_CHARS:,} characters)", path=path,
                      fix="break the text into lines: one paragraph per line (plain text: a blank line between "
                          "documents, or `documents: line` for one document per line)")


_DOC_OPEN = re.compile(r'<doc\s+id="([^"]*)"(?:\s+url="[^"]*")?(?:\s+title="([^"]*)")?[^>]*>')


def iter_wikiextractor(paths: list[Path], stats: ReadStats, *, encoding: str = enc.UTF8) -> Iterator[RawPage]:
    """``<doc id=.. url=.. title=..>`` blocks; the first line (the title) is dropped, paragraphs kept as lines."""
    ordinal = 0
    for p in paths:
        cur: list[str] | None = None
        pid = title = ""
        first = True
        for line in _decode_lines(p, stats, encoding):
            if cur is None:
                m = _DOC_OPEN.match(line)
                if m:
                    cur, pid, title, first = [], m.group(1), m.group(2) or "", True
                continue
            if line.startswith("</doc>"):
                yield RawPage(ord=ordinal, id=pid or f"ord{ordinal}", title=title, ns=0, text="\n".join(cur),
                              clean=True)
                ordinal += 1
                stats.pages = ordinal
                cur = None
                continue
            s = line.rstrip("\n")
            if first and s.strip():
                first = False
                if s.strip() == title.strip():
                    continue
            cur.append(s)
        if cur is not None:
            raise InputError(f"unterminated <doc id=\"{pid}\"> (no </doc>)", path=p,
                             fix="the WikiExtractor output is truncated; re-run WikiExtractor")


def iter_text(paths: list[Path], stats: ReadStats, *, encoding: str = enc.UTF8) -> Iterator[RawPage]:
    """Plain text: one paragraph per line, a blank line between documents. ids are ``<file name>:<doc index>``.

    A document that grows past :data:`MAX_DOC_CHARS` is refused while it is read (:func:`_no_document_breaks`):
    the file has no blank lines, so it would be held whole in memory as one document and land whole in one split.
    """
    ordinal = 0
    for p in paths:
        cur: list[str] = []
        k = nchars = 0
        for lineno, line in enumerate(_decode_lines(p, stats, encoding), 1):
            s = line.rstrip("\r\n")
            if s.strip():
                cur.append(s)
                nchars += len(s)
                if nchars > MAX_DOC_CHARS:
                    raise _no_document_breaks(p, lineno, len(cur), nchars)
                continue
            if cur:
                yield RawPage(ord=ordinal, id=f"{p.name}:{k}", title="", ns=0, text="\n".join(cur), clean=True)
                ordinal, k, cur, nchars = ordinal + 1, k + 1, [], 0
                stats.pages = ordinal
        if cur:
            yield RawPage(ord=ordinal, id=f"{p.name}:{k}", title="", ns=0, text="\n".join(cur), clean=True)
            ordinal += 1
            stats.pages = ordinal


#: the most characters one plain-text document may hold. The largest article of the 32,592 of the kowiki WikiExtractor
#: shard filters.py measures on has 168,275 characters (418 KB; 1,495 lines), the median 176: 1,000,000
#: (~3 MB of Korean UTF-8) leaves 6x room for the longest real document (a whole book fits), while a file read as
#: one document because it has no blank lines -- the failure this bound exists for -- is refused within its first
#: few MB, in milliseconds, with memory held to about this bound
MAX_DOC_CHARS = 1_000_000
#: bytes of one line read at most: a line of this many bytes without its "\n" holds more than MAX_DOC_CHARS
#: characters (UTF-8 spends at most 4 bytes on one), plus room for "\r\n"
_LINE_LIMIT = 4 * MAX_DOC_CHARS + 2


def _no_document_breaks(path: Path, lineno: int, lines: int, nchars: int) -> InputError:
    """The one-line error of a ``documents: blank`` file whose document outgrew :data:`MAX_DOC_CHARS`: without
    blank lines a file is one document, held whole in memory, sentence-split in one process and put whole into one
    split, so valid/test stay empty and preprocess fails on them hours later."""
    return InputError(f"{lines:,} lines and {nchars:,} characters without a blank line (lines {lineno - lines + 1:,}-"
                      f"{lineno:,}): with `documents: blank` (the default: a blank line between documents) that is "
                      f"one document of over {MAX_DOC_CHARS:,} characters, all of it in one split", path=path,
                      fix="for one document per line (reviews, comments, sentences) set `documents: line` "
                          "(corpus.documents / --documents line; in `sources:` the source's `documents:`), or put "
                          "a blank line between the documents")


def iter_text_lines(paths: list[Path], stats: ReadStats, *, encoding: str = enc.UTF8) -> Iterator[RawPage]:
    """Plain text with one document per non-empty line (``documents: line``: reviews, comments). ids are
    ``<file name>:<line number>`` (1-based), so a document can be found in its file."""
    ordinal = 0
    for p in paths:
        for lineno, line in enumerate(_decode_lines(p, stats, encoding), 1):
            s = line.rstrip("\r\n")
            if len(s) > MAX_DOC_CHARS:  # the bound of `documents: blank`, so that neither rule takes a whole file
                raise InputError(f"line {lineno:,} holds {len(s):,} characters, more than a document may hold "
                                 f"({MAX_DOC_CHARS:,}): with `documents: line` every line is one document", path=p,
                                 fix="break the text into lines (one document per line), or use `documents: blank` "
                                     "with one paragraph per line and a blank line between documents")
            if s.strip():
                yield RawPage(ord=ordinal, id=f"{p.name}:{lineno}", title="", ns=0, text=s, clean=True)
                ordinal += 1
                stats.pages = ordinal


def iter_nsmc(paths: list[Path], stats: ReadStats, *, encoding: str = enc.UTF8) -> Iterator[RawPage]:
    """NSMC-style TSV: a header naming ``id`` and ``document`` columns (``id<TAB>document<TAB>label``), then one
    document per row: its ``document`` text, its ``id`` as the document id. Fields are split on tabs only (NSMC is
    not quoted CSV: a review may hold a double quote). A row with fewer columns than the header is an error naming
    its line."""
    ordinal = 0
    for p in paths:
        cols: list[str] | None = None
        for lineno, line in enumerate(_decode_lines(p, stats, encoding), 1):
            s = line.rstrip("\r\n")
            if cols is None:
                if not s.strip():
                    continue
                cols = s.lstrip("\ufeff").split("\t")
                if "id" not in cols or "document" not in cols:
                    raise InputError(f"line {lineno}: the header has no `id` and `document` columns ({s[:60]!r})",
                                     path=p, fix="start the file with the header `id<TAB>document<TAB>label`")
                i_id, i_doc = cols.index("id"), cols.index("document")
                continue
            if not s.strip():
                continue
            row = s.split("\t")
            if len(row) <= max(i_id, i_doc):
                raise InputError(f"line {lineno}: {len(row)} tab-separated field(s), the header has {len(cols)}",
                                 path=p, fix="fix or delete that row (fields are separated by one tab each)")
            pid = row[i_id].strip()
            yield RawPage(ord=ordinal, id=pid or f"{p.name}:{lineno}", title="", ns=0, text=row[i_doc], clean=True)
            ordinal += 1
            stats.pages = ordinal


# -- text encodings: one policy for every stage (koroberta.encoding) --------------------------------------------------
_CHECK_FILES = 8  # files of a directory whose sample is checked before extraction: first, last and spread between


def _spread(files: list[Path], n: int = _CHECK_FILES) -> list[Path]:
    """At most ``n`` of ``files``, evenly spaced, first and last included: the check's cost is bounded, and the
    readers' running count covers the files it skipped."""
    if len(files) <= n:
        return files
    return [files[round(i * (len(files) - 1) / (n - 1))] for i in range(n)]


def check_source_encoding(source: Path, encoding: str = enc.UTF8) -> None:
    """Refuse a text or WikiExtractor source whose bytes are not in ``encoding``, before any output exists: UTF-8
    (the default) per :func:`koroberta.encoding.check_text_file` -- UTF-16 and CP949/EUC-KR are refused with the
    ``iconv`` command and the ``encoding:`` option that converts while reading; another codec: the files must decode
    in it strictly. A directory: up to :data:`_CHECK_FILES` of its files. Dumps and datasets are not checked (expat
    reads the encoding an XML file declares; Arrow strings are UTF-8), and take no ``encoding:``."""
    source = Path(source)
    if not enc.is_utf8(encoding):
        for f in _spread(_codec_text_source(source, encoding)[1]):
            enc.check_text_file(f, encoding=encoding, option="encoding", compressed=True)
        return
    try:
        fmt = detect_format(source)
    except InputError:
        # UTF-16 text is binary to detect_format (it has NUL bytes): say what it is and what converts it
        for f in list_dir_files(source) if source.is_dir() else [source]:
            _refuse_utf16(f)
        raise
    if fmt in ("text", "wikiextractor", "nsmc"):
        for f in _spread(list_dir_files(source) if source.is_dir() else [source]):
            enc.check_text_file(f, option="encoding", compressed=True)


def _refuse_utf16(path: Path) -> None:
    try:
        head = _peek_text(path, 4096)
    except InputError:  # a corrupt compressed file: detect_format's own error says so
        return
    found = enc.utf16_evidence(head)
    if found:
        name, iconv_name, codec, evidence = found
        raise enc.legacy_error(path, name, iconv_name, codec, evidence, option="encoding",
                               compression=compression_of(path))


def _codec_text_source(source: Path, encoding: str) -> tuple[str, list[Path]]:
    """``("text" | "wikiextractor", files)`` of a source to decode with ``encoding`` (a codec, not UTF-8).

    :func:`detect_format` reads UTF-8 bytes (UTF-16 is binary to it), so the kind comes from the first non-empty
    file's head decoded with the codec. A dump or a dataset with an ``encoding:`` is a :class:`ConfigError`: the
    option would do nothing there (XML declares its encoding, Arrow strings are UTF-8), and saying so beats
    ignoring it.
    """
    def refuse(what: str) -> ConfigError:
        return ConfigError(f"corpus.encoding={encoding!r} applies to plain text and WikiExtractor sources, and "
                           f"{source} is {what}", fix="remove `encoding:` (--encoding): UTF-8 is the default")

    if source.is_dir():
        files = list_dir_files(source)
        if (source / "dataset_dict.json").is_file() or (source / "state.json").is_file() \
                or any(_hf_file_kind(f) for f in files):
            raise refuse("a Hugging Face dataset (its strings are UTF-8)")
    elif source.is_file():
        files = [source]
        with open(source, "rb") as fh:
            if fh.read(4) == b"PAR1" or _hf_file_kind(source):
                raise refuse("a Hugging Face dataset file (its strings are UTF-8)")
    else:
        raise InputError("source not found", path=source,
                         fix="pass an existing dump, WikiExtractor output or text file")
    first = next((f for f in files if f.stat().st_size), None)
    if first is None:
        raise InputError("no text: every file is empty", path=source, fix="pass the text or WikiExtractor output")
    try:
        head = codecs.getincrementaldecoder(encoding)("ignore").decode(_peek_text(first, 4096)).lstrip("\ufeff \t\r\n")
    except UnicodeError:  # utf-16 without a byte-order mark: check_text_file says so
        head = ""
    if head.startswith(("<mediawiki", "<?xml")):
        raise refuse("a MediaWiki XML dump (its XML declaration names its encoding)")
    return ("wikiextractor" if head.startswith("<doc ") else "text"), files


# -- Hugging Face datasets on disk -------------------------------------------------------------------------------------
_STRING = ("string", "large_string")
_INTEGER = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
#: the columns read: the Arrow types each may have, those types in words, and what to do about another type
_COLUMNS = {
    "text": (_STRING, "string", "store each document as one string in `text` (one paragraph per line)"),
    "id": (_STRING + _INTEGER, "string or integer",
           "make `id` a string or integer column, or drop it (ids are then `ord<row>`)"),
    "title": (_STRING, "string", "make `title` a string column, or drop it"),
}
_HF_BATCH = 1000  # rows per Arrow batch: bounded memory however large the file, few Python calls per row


def _datasets():
    """``datasets``, imported offline: a source is local data, and nothing may be fetched while reading it."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    try:
        import datasets
    except ImportError as e:  # pragma: no cover - datasets is a pinned dependency
        raise DependencyError(f"the datasets package is not importable ({e})",
                              fix="pip install -r requirements/constraints.txt (datasets is pinned there)") from None
    return datasets


@contextlib.contextmanager
def _datasets_quiet() -> Iterator[None]:
    """datasets logs a read error at ERROR level before raising it; we raise it again as one line, so its log would
    only add more lines to the same error. Silenced just around the calls that read, not for the process."""
    logger = logging.getLogger("datasets")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _unreadable(path: Path, kind: str, e: BaseException) -> InputError:
    what = {"parquet": "a Parquet file", "jsonl": "a JSON Lines file", "hf_disk": "a datasets save_to_disk directory"}
    reason = (str(e).strip().splitlines() or [""])[0][:300]
    return InputError(f"not readable as {what[kind]} ({type(e).__name__}: {reason})", path=path,
                      fix="the data is damaged or in another format; re-create it (e.g. Dataset.to_parquet / "
                          "save_to_disk) or re-download it")


def _columns(features, path: Path) -> list[str]:
    """The columns to read (``text``, plus ``id``/``title`` when present), after checking their types."""
    if features is None:  # JSON whose schema datasets resolves only while reading: checked row by row instead
        return []
    if "text" not in features:
        raise InputError(f"no `text` column (columns: {', '.join(features) or 'none'})", path=path,
                         fix="rename the column that holds the documents to `text` (datasets: "
                             "ds.rename_column(\"content\", \"text\")), one document per row")
    cols = []
    for name, (types, words, fix) in _COLUMNS.items():
        if name not in features:
            continue
        dtype = getattr(features[name], "dtype", None)  # Value features have one; List, Json, ... do not
        if dtype not in types:
            shown = dtype if dtype is not None else type(features[name]).__name__
            raise InputError(f"column `{name}` is of type {shown}, not {words}", path=path, fix=fix)
        cols.append(name)
    return cols


def _hf_parts(source: Path, kind: str) -> Iterator[tuple[Path, Callable[[], object]]]:
    """(path named in errors, function opening that part as a ``datasets`` dataset) in reading order.

    Parquet / JSON Lines: one streaming dataset per file (sorted by path), so nothing is loaded or cached whole and
    an error names the very file; ``load_dataset`` costs ~5 ms per file after its first call. The schema of every
    Parquet file is checked first (a footer read each, as datasets itself infers features), so a bad shard among
    hundreds fails at once rather than after the ones before it were cleaned; only the columns used are read.
    ``save_to_disk``: the Arrow files are memory-mapped by ``load_from_disk``; a ``DatasetDict`` is read split
    after split in its stored order.
    """
    datasets = _datasets()
    if kind == "hf_disk":
        yield source, lambda: datasets.load_from_disk(str(source))
        return
    files = ([f for f in list_dir_files(source) if _hf_file_kind(f) == kind] if source.is_dir() else [source])
    if source.is_dir():
        others = len(list_dir_files(source)) - len(files)
        if others:
            log.info("%s: reading %d %s file(s), ignoring %d other file(s)", source, len(files), kind, others)
    if kind == "jsonl":  # JSON has no schema to check before reading: iter_hf checks the first batch of each file
        for f in files:
            yield f, (lambda f=f: datasets.load_dataset("json", data_files=[str(f)], split="train", streaming=True))
        return
    import pyarrow.parquet as pq

    columns = {}
    for f in files:
        try:
            schema = pq.read_schema(f)
        except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
            raise _unreadable(f, kind, e) from None
        columns[f] = _columns(datasets.Features.from_arrow_schema(schema), f)
    for f in files:
        yield f, (lambda f=f: datasets.load_dataset("parquet", data_files=[str(f)], split="train", streaming=True,
                                                    columns=columns[f]))


def iter_hf(source: Path, kind: str, stats: ReadStats) -> Iterator[RawPage]:
    """Rows of Hugging Face ``datasets`` data on disk (``kind``: ``hf_disk`` | ``parquet`` | ``jsonl``), read
    through ``datasets`` in Arrow batches of :data:`_HF_BATCH` rows.

    Each row is one document: ``text`` is already plain text with one paragraph per line, so it takes the
    plain-text cleaning path (``clean=True``: normalisation, control characters, literal special tokens, short
    lines; no wikitext rules). ``id`` (string or integer) is the document id the train/valid/test split hashes;
    a dataset without an ``id`` column, or a row whose id is null, gets ``ord<N>`` with ``N`` the row's index in
    the whole source (files in path order; the splits of a ``DatasetDict`` in their order), the fallback the dump
    reader uses for a page without one. ``title`` is kept when present. A null ``text`` is an empty document.
    """
    ordinal = 0
    for path, open_part in _hf_parts(source, kind):
        try:
            with _datasets_quiet():
                ds = open_part()
        except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
            raise _unreadable(path, kind, e) from None
        # a DatasetDict: its splits in their stored order
        dicts = list(ds.items()) if isinstance(ds, _datasets().DatasetDict) else [(None, ds)]
        for split_name, part in dicts:
            where = path / split_name if split_name else path
            cols = _columns(part.features, where)
            batches = iter(part.with_format("arrow").iter(batch_size=_HF_BATCH))
            while True:
                try:
                    with _datasets_quiet():
                        table = next(batches)
                except StopIteration:
                    break
                except (OSError, ValueError) as e:
                    raise _unreadable(path, kind, e) from None
                if not cols:  # schema known only now (see _columns)
                    cols = _columns(_datasets().Features.from_arrow_schema(table.schema), where)
                values = {c: table.column(c).to_pylist() for c in cols}
                for i, text in enumerate(values["text"]):  # strings or None: the column type was checked
                    pid = values["id"][i] if "id" in values else None
                    title = values["title"][i] if "title" in values else None
                    yield RawPage(ord=ordinal, id=f"ord{ordinal}" if pid is None or pid == "" else str(pid),
                                  title=title or "", ns=0, text=text or "", clean=True)
                    ordinal += 1
                    stats.pages = ordinal


def iter_source(source: Path, stats: ReadStats, *, dbname: str = "kowiki",
                decompress_threads: int = 1, encoding: str = enc.UTF8, documents: str = "blank",
                streams: "StreamRange | None" = None) -> Iterator[RawPage]:
    """Dispatch on the detected format (see the module docstring). ``encoding`` other than UTF-8 (``corpus.encoding``):
    a text / WikiExtractor source decoded with that codec (:func:`check_source_encoding` refuses what does not fit).
    ``documents``: how plain text is cut into documents, ``blank`` (a blank line between them) or ``line``.
    ``streams``: a multistream dump's shard, read alone (:func:`iter_dump`); refused for any other source."""
    text_reader = iter_text_lines if documents == "line" else iter_text
    if not enc.is_utf8(encoding):
        kind, files = _codec_text_source(source, encoding)
        if kind == "wikiextractor":
            _refuse_documents(source, documents, "WikiExtractor output")
            return iter_wikiextractor(files, stats, encoding=encoding)
        return text_reader(files, stats, encoding=encoding)
    fmt = detect_format(source)
    if fmt != "text":
        _refuse_documents(source, documents, _KIND_WORDS[fmt])
    if fmt in ("hf_disk", "parquet", "jsonl"):
        return iter_hf(source, fmt, stats)
    if fmt == "dump":
        if source.is_dir():
            raise InputError("a directory of XML dumps is not supported", path=source,
                             fix="pass one .xml.bz2 file (or shard over pages with --shard/--num-shards)")
        return iter_dump(source, stats, dbname=dbname, decompress_threads=decompress_threads, streams=streams)
    if streams is not None:
        what = _KIND_WORDS.get(fmt, "plain text")
        raise InputError(f"a stream index lies next to it ({streams.index.name}), but it is {what}, not a MediaWiki "
                         "dump", path=source,
                         fix=f"move {streams.index} away: only a multistream .xml.bz2 dump is read by streams")
    files = list_dir_files(source) if source.is_dir() else [source]
    if fmt == "wikiextractor":
        return iter_wikiextractor(files, stats)
    if fmt == "nsmc":
        return iter_nsmc(files, stats)
    return text_reader(files, stats)


_KIND_WORDS = {"dump": "a MediaWiki dump", "wikiextractor": "WikiExtractor output", "nsmc": "an NSMC-style TSV (one "
               "document per row already)", "hf_disk": "a Hugging Face dataset (one document per row already)",
               "parquet": "a Parquet dataset (one document per row already)",
               "jsonl": "a JSON Lines dataset (one document per row already)"}


def _refuse_documents(source: Path, documents: str, what: str) -> None:
    """``documents: line`` on a source that is not plain text: the rule would do nothing there (those sources mark
    their documents themselves), and saying so beats ignoring it. The `sources:` list refuses it when the config is
    read if the path exists (:func:`koroberta.corpus.config.resolve_sources`); this catches a single ``source:``."""
    if documents != "blank":
        raise ConfigError(f"`documents: {documents}` applies to plain text, and this source is {what}", path=source,
                          fix="remove `documents:` (corpus.documents / --documents, or the source's `documents:` "
                              "in `sources:`)")
