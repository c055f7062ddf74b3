"""Readers for every accepted source: MediaWiki XML dumps (``.xml.bz2``/``.xml``/``.xml.xz``/``.xml.gz``),
WikiExtractor output (a directory of ``wiki_NN`` files or one file, optionally ``.xz``/``.bz2``), plain text
(blank line = document boundary).

All readers yield :class:`RawPage` in source order with a running ordinal ``ord`` (used for sharding: shard ``i`` of
``n`` handles ordinals ``ord % n == i``, so any shard count sees the same pages in the same order). Bad input
raises :class:`~koroberta.errors.InputError` naming the file and the fix; a truncated compressed stream reports how
far it got.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import logging
import lzma
import os
import pyexpat
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterator

from koroberta.errors import InputError

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
    """``dump`` | ``wikiextractor`` | ``text`` for a file; a directory is WikiExtractor output or text files."""
    if path.is_dir():
        files = list_dir_files(path)
        if not files:
            raise InputError("directory holds no input files", path=path,
                             fix="point at a WikiExtractor output directory or a text file")
        return detect_format(files[0])
    if not path.is_file():
        raise InputError("source not found", path=path, fix="pass an existing dump, WikiExtractor output or text file")
    if path.stat().st_size == 0:
        raise InputError("empty file", path=path, fix="re-download the dump (`koroberta corpus download`)")
    head = _peek_text(path).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<mediawiki") or (head.startswith(b"<?xml") and b"<mediawiki" in head):
        return "dump"
    if head.startswith(b"<doc "):
        return "wikiextractor"
    if head.startswith(b"<?xml") or (head.startswith(b"<") and path.name.endswith((".xml", ".xml.bz2"))):
        raise InputError("XML but not a MediaWiki export (no <mediawiki> root)", path=path,
                         fix="use a pages-articles dump from dumps.wikimedia.org")
    if ".xml" in path.name:
        raise InputError("not XML (expected a MediaWiki pages-articles dump)", path=path,
                         fix="check the file: it may be an HTML error page or another format; re-download it")
    return "text"


def list_dir_files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file() and not any(x.startswith(".") for x in p.relative_to(path).parts))


def _open_dump(path: Path, kind: str | None, threads: int,
               stack: contextlib.ExitStack) -> tuple[IO[bytes], Callable[[], int]]:
    """The decompressed stream of a dump (closed with ``stack``) and a function giving the compressed bytes read.

    ``.bz2`` goes through ``indexed_bzip2`` when it is installed (a dependency; the stdlib decoder is the
    fallback): it decodes bzip2 blocks in ``threads`` threads and is faster even on one: 4.0-4.2 vs 4.9-5.3 CPU-s
    for the 20k-page bench dump (32.7 MB bz2; three interleaved runs each), 2.0 s wall with 2 threads. Decoding
    is the part of extraction that worker processes cannot share, so on a many-core node it bounds the step's wall
    time. Both decoders give the same bytes and both raise on a truncated or corrupt stream.
    """
    if kind == "bz2" and not _FORCE_STDLIB_BZ2:
        try:
            import indexed_bzip2
        except ImportError:
            pass
        else:
            threads = max(1, min(threads, os.cpu_count() or 1))  # more threads than cores only adds switching
            fast = stack.enter_context(contextlib.closing(indexed_bzip2.open(str(path), parallelization=threads)))
            return fast, lambda: fast.tell_compressed() // 8
    raw = stack.enter_context(open(path, "rb"))
    if kind == "bz2":
        return stack.enter_context(bz2.BZ2File(raw)), raw.tell
    if kind == "xz":
        return stack.enter_context(lzma.LZMAFile(raw)), raw.tell
    if kind == "gz":
        return stack.enter_context(gzip.GzipFile(fileobj=raw)), raw.tell  # type: ignore[return-value]
    return raw, raw.tell


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


def iter_dump(path: Path, stats: ReadStats, *, dbname: str = "kowiki",
              decompress_threads: int = 1) -> Iterator[RawPage]:
    """Stream the ``<page>`` elements of a MediaWiki export (expat: C speed, full well-formedness checking).
    ``decompress_threads`` > 1 decodes a ``.bz2`` dump in parallel (see :func:`_open_dump`)."""
    kind = compression_of(path)
    parser = pyexpat.ParserCreate(namespace_separator="}")
    parser.buffer_text = True  # one data callback per text run, not one per line / entity
    parser.buffer_size = 1 << 20
    pages = _PageCollector(parser, path, dbname)
    ordinal = 0
    with contextlib.ExitStack() as stack:
        try:
            stream, consumed = _open_dump(path, kind, decompress_threads, stack)
        except _DECODE_ERRORS as e:
            raise InputError(f"cannot open the {kind} stream ({e})", path=path,
                             fix="re-download it with `koroberta corpus download` and verify the checksum") from None
        while True:
            try:
                chunk = stream.read(1 << 20)
            except _DECODE_ERRORS as e:
                at, size = consumed(), path.stat().st_size
                reason = str(e)
                if reason in ("", "std::exception"):  # indexed_bzip2 says no more than this on a cut-off stream
                    reason = "the data ends before the end-of-stream marker" if at >= size else "damaged data"
                raise InputError(f"truncated or corrupt {kind} stream after {at / 1e6:.1f} MB of "
                                 f"{size / 1e6:.1f} MB ({ordinal:,} pages read: {reason})", path=path,
                                 fix="re-download it with `koroberta corpus download` (it resumes) and verify "
                                     "the checksum") from None
            if not chunk:
                break
            try:
                parser.Parse(chunk, False)
            except pyexpat.ExpatError as e:
                raise InputError(f"not well-formed XML ({e}; {ordinal + len(pages.done):,} pages read)", path=path,
                                 fix="the file is damaged or not a MediaWiki dump; re-download it") from None
            stats.dbname = pages.dbname_seen
            done, pages.done = pages.done, []
            for fields in done:
                page = _raw_page(fields, ordinal)
                ordinal += 1
                stats.pages = ordinal
                yield page
        try:
            parser.Parse(b"", True)
        except pyexpat.ExpatError as e:
            raise InputError(f"XML ends early ({e}; {ordinal:,} pages read)", path=path,
                             fix="the dump is truncated; re-download it with `koroberta corpus download`") from None
    if pages.root is None:
        raise InputError("empty dump (no XML content)", path=path, fix="re-download the dump")
    if not ordinal:
        raise InputError("dump holds no <page> elements", path=path,
                         fix="use a pages-articles dump (this may be a stub or siteinfo-only file)")


def _decode_lines(path: Path, stats: ReadStats) -> Iterator[str]:
    """Lines of a (possibly compressed) text file; invalid UTF-8 is replaced with U+FFFD and counted."""
    try:
        with open_binary(path) as f:
            for raw in f:
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError:
                    line = raw.decode("utf-8", errors="replace")
                    stats.invalid_utf8 += line.count("\ufffd")
                    yield line
    except (EOFError, lzma.LZMAError, OSError) as e:
        raise InputError(f"truncated or corrupt compressed file ({e})", path=path,
                         fix="re-create or re-download it") from None


_DOC_OPEN = re.compile(r'<doc\s+id="([^"]*)"(?:\s+url="[^"]*")?(?:\s+title="([^"]*)")?[^>]*>')


def iter_wikiextractor(paths: list[Path], stats: ReadStats) -> Iterator[RawPage]:
    """``<doc id=.. url=.. title=..>`` blocks; the first line (the title) is dropped, paragraphs kept as lines."""
    ordinal = 0
    for p in paths:
        cur: list[str] | None = None
        pid = title = ""
        first = True
        for line in _decode_lines(p, stats):
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


def iter_text(paths: list[Path], stats: ReadStats) -> Iterator[RawPage]:
    """Plain text: one paragraph per line, a blank line between documents. ids are ``<file name>:<doc index>``."""
    ordinal = 0
    for p in paths:
        cur: list[str] = []
        k = 0
        for line in _decode_lines(p, stats):
            s = line.rstrip("\r\n")
            if s.strip():
                cur.append(s)
                continue
            if cur:
                yield RawPage(ord=ordinal, id=f"{p.name}:{k}", title="", ns=0, text="\n".join(cur), clean=True)
                ordinal, k, cur = ordinal + 1, k + 1, []
                stats.pages = ordinal
        if cur:
            yield RawPage(ord=ordinal, id=f"{p.name}:{k}", title="", ns=0, text="\n".join(cur), clean=True)
            ordinal += 1
            stats.pages = ordinal


def iter_source(source: Path, stats: ReadStats, *, dbname: str = "kowiki",
                decompress_threads: int = 1) -> Iterator[RawPage]:
    """Dispatch on the detected format (see the module docstring)."""
    fmt = detect_format(source)
    if fmt == "dump":
        if source.is_dir():
            raise InputError("a directory of XML dumps is not supported", path=source,
                             fix="pass one .xml.bz2 file (or shard over pages with --shard/--num-shards)")
        return iter_dump(source, stats, dbname=dbname, decompress_threads=decompress_threads)
    files = list_dir_files(source) if source.is_dir() else [source]
    if fmt == "wikiextractor":
        return iter_wikiextractor(files, stats)
    return iter_text(files, stats)
