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
import gzip
import logging
import lzma
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterator

from koroberta.errors import InputError

log = logging.getLogger("koroberta.corpus")

FORMATS = ("dump", "wikiextractor", "text")
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
    bytes_read: int = 0
    files: list[str] = field(default_factory=list)


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


class _CountingReader:
    """Wraps the raw (compressed) file to report progress in compressed bytes."""

    def __init__(self, raw: IO[bytes], on_read: Callable[[int], None] | None):
        self.raw, self.on_read = raw, on_read

    def read(self, n: int = -1) -> bytes:
        b = self.raw.read(n)
        if self.on_read:
            self.on_read(len(b))
        return b

    def close(self) -> None:
        self.raw.close()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def iter_dump(path: Path, stats: ReadStats, *, dbname: str = "kowiki",
              progress: Callable[[int], None] | None = None) -> Iterator[RawPage]:
    """Stream ``<page>`` elements of a MediaWiki export with ``ElementTree.XMLPullParser`` (expat, C speed)."""
    stats.files.append(str(path))
    kind = compression_of(path)
    raw = open(path, "rb")
    counted = _CountingReader(raw, progress)
    if kind == "bz2":
        stream: IO[bytes] = bz2.BZ2File(counted)  # type: ignore[arg-type]
    elif kind == "xz":
        stream = lzma.LZMAFile(counted)  # type: ignore[arg-type]
    elif kind == "gz":
        stream = gzip.GzipFile(fileobj=counted)  # type: ignore[arg-type]
    else:
        stream = counted  # type: ignore[assignment]
    parser = ET.XMLPullParser(events=("start", "end"))
    root = None
    ordinal = 0
    seen_page = False
    try:
        with raw:
            while True:
                try:
                    chunk = stream.read(1 << 20)
                except (EOFError, OSError, lzma.LZMAError) as e:
                    raise InputError(f"truncated or corrupt {kind} stream after {raw.tell() / 1e6:.1f} MB of "
                                     f"{path.stat().st_size / 1e6:.1f} MB ({ordinal:,} pages read: {e})", path=path,
                                     fix="re-download it with `koroberta corpus download` (it resumes) and verify "
                                         "the checksum") from None
                stats.bytes_read = raw.tell()
                if not chunk:
                    break
                try:
                    parser.feed(chunk)
                    events = list(parser.read_events())
                except ET.ParseError as e:
                    raise InputError(f"not well-formed XML ({e}; {ordinal:,} pages read)", path=path,
                                     fix="the file is damaged or not a MediaWiki dump; re-download it") from None
                for ev, el in events:
                    if ev == "start":
                        if root is None:
                            root = el
                            if _local(el.tag) != "mediawiki":
                                raise InputError(f"XML root is <{_local(el.tag)}>, not <mediawiki>", path=path,
                                                 fix="use a pages-articles dump from dumps.wikimedia.org")
                        continue
                    name = _local(el.tag)
                    if name == "dbname":
                        stats.dbname = (el.text or "").strip()
                        if dbname and stats.dbname != dbname:
                            raise InputError(f"dump of '{stats.dbname}', expected '{dbname}'", path=path,
                                             fix=f"use a {dbname} dump, or pass --dbname {stats.dbname} "
                                                 f"(or --dbname '') to accept it")
                        if not dbname and stats.dbname != "kowiki":
                            log.warning("%s: dump of '%s', not kowiki (accepted because --dbname '')", path,
                                        stats.dbname)
                    elif name == "page":
                        seen_page = True
                        page = _page_from_element(el, ordinal)
                        ordinal += 1
                        stats.pages = ordinal
                        el.clear()
                        if root is not None:
                            root.clear()  # finished pages detached: memory stays flat on a 1M-page dump
                        yield page
            try:
                parser.close()
            except ET.ParseError as e:
                raise InputError(f"XML ends early ({e}; {ordinal:,} pages read)", path=path,
                                 fix="the dump is truncated; re-download it with `koroberta corpus download`") from None
    finally:
        stream.close()
    if root is None:
        raise InputError("empty dump (no XML content)", path=path, fix="re-download the dump")
    if not seen_page:
        raise InputError("dump holds no <page> elements", path=path,
                         fix="use a pages-articles dump (this may be a stub or siteinfo-only file)")


def _page_from_element(el: ET.Element, ordinal: int) -> RawPage:
    title, ns, pid, text, redirect = "", 0, "", "", False
    for child in el:
        n = _local(child.tag)
        if n == "title":
            title = child.text or ""
        elif n == "ns":
            try:
                ns = int(child.text or 0)
            except ValueError:
                ns = -999
        elif n == "id":
            pid = (child.text or "").strip()
        elif n == "redirect":
            redirect = True
        elif n == "revision":
            for rc in child:
                if _local(rc.tag) == "text":
                    text = rc.text or ""
    return RawPage(ord=ordinal, id=pid or f"ord{ordinal}", title=title, ns=ns, text=text, redirect=redirect)


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
        stats.files.append(str(p))
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
        stats.files.append(str(p))
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
                progress: Callable[[int], None] | None = None) -> Iterator[RawPage]:
    """Dispatch on the detected format (see the module docstring)."""
    fmt = detect_format(source)
    if fmt == "dump":
        if source.is_dir():
            raise InputError("a directory of XML dumps is not supported", path=source,
                             fix="pass one .xml.bz2 file (or shard over pages with --shard/--num-shards)")
        return iter_dump(source, stats, dbname=dbname, progress=progress)
    files = list_dir_files(source) if source.is_dir() else [source]
    if fmt == "wikiextractor":
        return iter_wikiextractor(files, stats)
    return iter_text(files, stats)
