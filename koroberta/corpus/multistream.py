"""Multistream dumps: ``<wiki>-<date>-pages-articles-multistream.xml.bz2`` and its index, so that each shard of a
SLURM array decodes only its own part of the dump.

The format (Wikimedia's): the ``.bz2`` is a concatenation of independent bz2 streams -- the first holds the XML
header (``<mediawiki ...>`` and ``<siteinfo>``), then streams of (normally) 100 ``<page>`` elements each, then a
last stream with ``</mediawiki>``. Concatenated, they are one valid multi-stream ``.bz2`` file that any reader
decodes whole. The index ``...-multistream-index.txt.bz2`` has one line per page, ``OFFSET:PAGE_ID:TITLE`` (the
title may hold colons), in dump order; ``OFFSET`` is the byte offset in the ``.bz2`` of the stream that holds the
page.

Sharding (:func:`shard_range`): shard ``i`` of ``n`` takes the streams whose offset falls in the ``i``-th of ``n``
equal slices of the page streams' bytes -- a contiguous run of whole streams, balanced by compressed bytes -- and
decodes the header stream plus those streams only (:class:`SegmentReader`); together the shards decode the file
once, plus ``n - 1`` copies of the header stream (a few hundred bytes). A shard's pages get their ordinals in the
whole dump from the index (the pages of the streams before its first), so the clean step's merge by ``ord`` gives
the one-process output. The index is checked against what is parsed (the page ids, in order, and their count);
a mismatch is a one-line error naming the index and the fix.

:func:`write_multistream` / :func:`convert_dump` write this format (from page XML, or from any dump koroberta
reads): the tests and the benchmark build their dumps with it, and a user can turn an own single-stream dump into
one that shards this way.
"""

from __future__ import annotations

import bz2
import html
import io
import itertools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator

from koroberta.errors import InputError

#: re-download both, together: an index belongs to exactly one dump file
FIX_INDEX = ("re-download the dump and its index together (`koroberta corpus download --multistream`), or move the "
             "index away to read the dump without it (each shard then decodes the whole dump)")


def index_for(dump: str | Path) -> Path | None:
    """The stream index next to ``dump``, by Wikimedia's naming (``X.xml.bz2`` -> ``X-index.txt.bz2``, e.g.
    ``kowiki-20261101-pages-articles-multistream.xml.bz2`` -> ``...-multistream-index.txt.bz2``; an index
    decompressed by hand, ``X-index.txt``, is taken too), or None when there is none or ``dump`` is no ``.xml.bz2``
    file."""
    p = Path(dump)
    if not p.name.endswith(".xml.bz2") or not p.is_file():
        return None
    stem = p.name[:-len(".xml.bz2")]
    for name in (f"{stem}-index.txt.bz2", f"{stem}-index.txt"):
        if (p.parent / name).is_file():
            return p.parent / name
    return None


def expected_index_name(dump: str | Path) -> str:
    """The index file name :func:`index_for` looks for next to ``dump`` (for messages)."""
    name = Path(dump).name
    return (name[:-len(".xml.bz2")] if name.endswith(".xml.bz2") else name) + "-index.txt.bz2"


@dataclass
class StreamRange:
    """What one shard decodes: the header stream ``[0, header_end)`` and the page streams ``[start, end)``.

    ``ord_base``: how many pages the index lists before ``start`` (the shard's first page's ordinal);
    ``page_ids``: the ids the index lists for the shard's pages, in order; ``streams``: (offset, pages) of each of
    its streams; ``to_eof``: the range runs to the end of the file (it holds the ``</mediawiki>`` stream)."""

    index: Path
    dump: Path
    header_end: int
    start: int
    end: int
    ord_base: int
    to_eof: bool
    page_ids: list[str] = field(default_factory=list)
    streams: list[tuple[int, int]] = field(default_factory=list)

    @property
    def compressed_bytes(self) -> int:
        return self.header_end + (self.end - self.start)


def _bad_index(index: Path, dump: Path, what: str) -> InputError:
    return InputError(f"stream index does not fit {dump.name}: {what}", path=index, fix=FIX_INDEX)


def shard_range(index: str | Path, dump: str | Path, shard: int, num_shards: int) -> StreamRange:
    """The streams of shard ``shard`` of ``num_shards`` (see the module docstring), from one pass over the index
    that stops at the first stream of the next shard: memory holds the shard's own page ids only.

    A stream goes to shard ``(offset - header_end) * num_shards // (size - header_end)``: monotonic in the offset,
    so each shard's streams are contiguous, and each shard gets about ``1 / num_shards`` of the compressed bytes.
    A shard past the last stream (more shards than streams) gets an empty range. Offsets that decrease, lie past
    the end of the file or do not parse are an :class:`InputError` naming the index.
    """
    from koroberta.corpus.sources import open_binary

    index, dump = Path(index), Path(dump)
    size = dump.stat().st_size
    rng: StreamRange | None = None
    prev_raw: bytes | None = None  # the offset field of the previous line, unparsed
    prev = cur_shard = -1
    span = 1
    try:
        with open_binary(index) as f:
            for lineno, line in enumerate(f, 1):
                raw, sep, rest = line.partition(b":")
                if raw != prev_raw:  # a new stream: ~100 lines share one offset, parsed once
                    if not (sep and raw.isdigit()):
                        raise _bad_line(index, dump, lineno, line)
                    off = int(raw)
                    if off < prev:
                        raise _bad_index(index, dump, f"line {lineno:,}: offset {off:,} comes after {prev:,} "
                                                      "(offsets never decrease in an index)")
                    if off >= size:
                        raise _bad_index(index, dump, f"line {lineno:,}: offset {off:,} lies past the end of the "
                                                      f"dump ({size:,} bytes)")
                    if rng is None:  # the first page stream ends the header stream
                        rng = StreamRange(index, dump, header_end=off, start=size, end=size, ord_base=0,
                                          to_eof=True)
                        span = max(1, size - off)
                    cur_shard = (off - rng.header_end) * num_shards // span
                    if cur_shard > shard:
                        rng.end, rng.to_eof = off, False
                        break
                    if cur_shard == shard:
                        if not rng.streams:
                            rng.start = off
                        rng.streams.append((off, 0))
                    prev_raw, prev = raw, off
                if cur_shard < shard:
                    rng.ord_base += 1  # type: ignore[union-attr]
                    continue
                pid, sep2, _title = rest.partition(b":")
                if not sep2:
                    raise _bad_line(index, dump, lineno, line)
                rng.page_ids.append(pid.decode("utf-8", "replace").strip())  # type: ignore[union-attr]
                o, n = rng.streams[-1]  # type: ignore[union-attr]
                rng.streams[-1] = (o, n + 1)  # type: ignore[union-attr]
    except (EOFError, OSError) as e:
        raise InputError(f"truncated or corrupt stream index ({e})", path=index, fix=FIX_INDEX) from None
    if rng is None:
        raise _bad_index(index, dump, "the index lists no pages")
    if not rng.streams:  # no stream of its own: nothing but the header to decode, no pages, our own </mediawiki>
        rng.start, rng.to_eof = rng.end, False
    return rng


def _bad_line(index: Path, dump: Path, lineno: int, line: bytes) -> InputError:
    return _bad_index(index, dump, f"line {lineno:,} is not OFFSET:PAGE_ID:TITLE "
                                   f"({line[:60].decode('utf-8', 'replace')!r})")


class SegmentReader(io.RawIOBase):
    """A read-only, seekable file over byte ranges of one file, concatenated: what a shard's decoder reads (the
    header stream, then its own streams) -- each a whole bz2 stream, so the concatenation is a valid multi-stream
    ``.bz2``. :attr:`bytes_read`: the distinct bytes handed out. ``indexed_bzip2`` with several threads reads the
    data more than once (its block finder and its decoders each read it: 4-8x the range through this class,
    from the page cache), so the total handed out would say more about the decoder than about the range."""

    def __init__(self, path: str | Path, segments: Iterable[tuple[int, int]]):
        super().__init__()
        self._f = open(path, "rb")
        self._segs: list[tuple[int, int, int]] = []  # (virtual start, file start, length)
        v = 0
        for a, b in segments:
            if b > a:
                self._segs.append((v, a, b - a))
                v += b - a
        self._size, self._pos = v, 0
        self._spans: list[tuple[int, int]] = []  # virtual ranges handed out, merged when bytes_read is asked

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buf) -> int:
        view = memoryview(buf).cast("B")
        done = 0
        while done < len(view) and self._pos < self._size:
            for vstart, fstart, length in self._segs:
                if vstart <= self._pos < vstart + length:
                    break
            k = min(len(view) - done, vstart + length - self._pos)
            self._f.seek(fstart + self._pos - vstart)
            got = self._f.readinto(view[done:done + k])
            if not got:  # the file shrank under us: the decoder reports a truncated stream
                break
            done += got
            self._pos += got
        if done:
            if self._spans and self._spans[-1][1] == self._pos - done:  # sequential: extend the last span
                self._spans[-1] = (self._spans[-1][0], self._pos)
            else:
                self._spans.append((self._pos - done, self._pos))
        return done

    @property
    def bytes_read(self) -> int:
        """Distinct bytes of the file read so far (each counted once however often it was read)."""
        total, end = 0, -1
        for a, b in sorted(self._spans):
            if b > end:
                total += b - max(a, end)
                end = b
        return total

    def close(self) -> None:
        if not self.closed:
            self._f.close()
        super().close()


# -- writing -----------------------------------------------------------------------------------------------------------
_TITLE = re.compile(rb"<title>([^<]*)</title>")
_ID = re.compile(rb"<id>\s*([^<\s]*)\s*</id>")


def _page_key(page: bytes) -> tuple[str, str]:
    """(page id, title) of one ``<page>`` element: the first ``<id>`` is the page's (the revision's and the
    contributor's come after it, inside ``<revision>``); the title as text (entities decoded), as the index
    holds it."""
    head = page.split(b"<revision", 1)[0]
    m_id, m_title = _ID.search(head), _TITLE.search(head)
    title = html.unescape(m_title.group(1).decode("utf-8")) if m_title else ""
    return (m_id.group(1).decode("utf-8") if m_id else ""), title.replace("\n", " ")


def _compress_group(group: tuple[bytes, list[tuple[str, str]]]) -> tuple[bytes, list[tuple[str, str]]]:
    return bz2.compress(group[0], 9), group[1]


def _bounded_map(pool, workers: int, groups: Iterator) -> Iterator[tuple[bytes, list[tuple[str, str]]]]:
    """``_compress_group`` over ``groups`` in order, at most ``4 * workers`` streams in flight (``Pool.imap`` would
    read the whole dump into memory ahead of the workers)."""
    if pool is None:
        yield from map(_compress_group, groups)
        return
    while True:
        window = list(itertools.islice(groups, 4 * workers))
        if not window:
            return
        yield from pool.map(_compress_group, window, chunksize=1)


def write_multistream(header: bytes, pages: Iterable[bytes], dump_path: str | Path, index_path: str | Path, *,
                      trailer: bytes | Callable[[], bytes] = b"</mediawiki>\n", pages_per_stream: int = 100,
                      workers: int = 1) -> int:
    """Write ``header`` (``<mediawiki ...>`` through ``</siteinfo>``), the ``<page>`` elements of ``pages`` (each
    one element's bytes, its indentation and line break included) ``pages_per_stream`` to a bz2 stream, and
    ``trailer`` (or what it returns once ``pages`` is exhausted) as a multistream dump, and its index
    (``OFFSET:PAGE_ID:TITLE`` per page, bz2-compressed), as Wikimedia lays them out. ``workers`` > 1 compresses
    streams in that many processes (same bytes). Both files are written to temporary names and renamed when
    complete. Returns the number of pages written."""
    if pages_per_stream < 1:
        raise ValueError("pages_per_stream must be >= 1")
    dump_path, index_path = Path(dump_path), Path(index_path)
    tmp_dump = dump_path.with_name(dump_path.name + ".tmp")
    tmp_index = index_path.with_name(index_path.name + ".tmp")

    def groups() -> Iterator[tuple[bytes, list[tuple[str, str]]]]:
        chunk: list[bytes] = []
        for page in pages:
            chunk.append(page)
            if len(chunk) == pages_per_stream:
                yield b"".join(chunk), [_page_key(p) for p in chunk]
                chunk = []
        if chunk:
            yield b"".join(chunk), [_page_key(p) for p in chunk]

    n = 0
    pool = None
    try:
        if workers > 1:
            import multiprocessing as mp

            pool = mp.get_context("fork").Pool(workers)
        with open(tmp_dump, "wb") as out, bz2.open(tmp_index, "wb") as idx:
            out.write(bz2.compress(header, 9))
            for blob, keys in _bounded_map(pool, workers, groups()):
                off = out.tell()
                out.write(blob)
                idx.write("".join(f"{off}:{pid}:{title}\n" for pid, title in keys).encode("utf-8"))
                n += len(keys)
            tail = trailer() if callable(trailer) else trailer
            if tail:
                out.write(bz2.compress(tail, 9))
        os.replace(tmp_dump, dump_path)
        os.replace(tmp_index, index_path)
    finally:
        if pool is not None:
            pool.terminate()
        for t in (tmp_dump, tmp_index):
            t.unlink(missing_ok=True)
    return n


def split_dump(stream: IO[bytes], chunk: int = 1 << 20) -> tuple[bytes, Iterator[bytes], list[bytes]]:
    """(header, iterator of ``<page>`` elements, [trailer]) of a MediaWiki export read from ``stream``, streaming:
    the header is everything before the line of the first ``<page>``; each page runs from its line's start through
    ``</page>`` and its line break; the trailer (filled when the iterator is exhausted) is what follows the last
    page. Literal ``<page>`` cannot occur in character data (XML escapes ``<``), so a byte search is exact."""
    buf = bytearray()
    eof = False

    def fill() -> bool:
        nonlocal eof
        if eof:
            return False
        data = stream.read(chunk)
        if not data:
            eof = True
            return False
        buf.extend(data)
        return True

    while (i := buf.find(b"<page>")) < 0:
        if not fill():
            raise ValueError("no <page> element in the dump")
    line_start = buf.rfind(b"\n", 0, i) + 1
    header = bytes(buf[:line_start])
    del buf[:line_start]
    trailer: list[bytes] = []

    def pages() -> Iterator[bytes]:
        pos = 0  # where the next page is searched; the consumed front of buf is cut off in blocks, not per page
        while True:
            if pos > chunk:
                del buf[:pos]
                pos = 0
            start = buf.find(b"<page>", pos)
            while start < 0 and fill():
                start = buf.find(b"<page>", pos)
            if start < 0:
                trailer.append(bytes(buf[pos:]))
                return
            start = buf.rfind(b"\n", pos, start) + 1 or pos
            end = buf.find(b"</page>", start)
            while end < 0:
                if not fill():
                    raise ValueError("the dump ends inside a <page> element")
                end = buf.find(b"</page>", start)
            end += len(b"</page>")
            nl = buf.find(b"\n", end)
            while nl < 0 and fill():
                nl = buf.find(b"\n", end)
            pos = len(buf) if nl < 0 else nl + 1
            yield bytes(buf[start:pos])

    return header, pages(), trailer


def convert_dump(source: str | Path, dump_path: str | Path, index_path: str | Path | None = None, *,
                 pages_per_stream: int = 100, workers: int = 1) -> int:
    """Rewrite a dump koroberta reads (``.xml``, ``.xml.bz2``/``.xz``/``.gz``) as a multistream dump and its index
    (default: the name :func:`index_for` finds next to ``dump_path``). Returns the number of pages."""
    from koroberta.corpus.sources import open_binary

    dump_path = Path(dump_path)
    if index_path is None:
        index_path = dump_path.with_name(expected_index_name(dump_path))
    with open_binary(Path(source)) as f:
        header, pages, trailer = split_dump(f)
        # the trailer is known once every page is read: its own last stream, as in Wikimedia's files
        return write_multistream(header, pages, dump_path, index_path, pages_per_stream=pages_per_stream,
                                 workers=workers, trailer=lambda: trailer[0] if trailer else b"</mediawiki>\n")
