"""One text-encoding policy for every stage that reads user text: UTF-8, or refused with the exact command that
converts it (unless the user asked to convert while reading) -- never mojibake.

The rule (corpus, spm, preprocess, eval/finetune alike)
--------------------------------------------------------
* Valid UTF-8 is accepted; a UTF-8 byte-order mark is fine.
* UTF-16/UTF-32 (a byte-order mark; UTF-16 also by its NUL bytes: :func:`utf16_evidence`) and CP949/EUC-KR (the
  lines that are not UTF-8 decode cleanly as CP949 and read as Korean, :data:`CP949_EVIDENCE` Hangul syllables in
  all: :func:`cp949_reading`) are refused with an :class:`~koroberta.errors.InputError` naming the file, the
  encoding, the evidence and the command, e.g. ``iconv -f CP949 -t UTF-8 in.txt > in.utf8.txt``. The corpus stage
  also offers ``encoding: cp949`` (``--encoding cp949``), which decodes the file with that codec while reading
  (:func:`iter_decoded_lines`); spm and preprocess read the corpus stage's UTF-8 output and name only the command.
* Stray invalid bytes in otherwise-UTF-8 text are repaired (U+FFFD, counted in the manifest) while the file has at
  most :func:`allowed_invalid` = ``max(8, size // 100,000)`` invalid sequences -- one per 100,000 bytes, never fewer
  than 8 -- and its bad lines do not read as CP949 Korean. Above that the file is refused ("N invalid UTF-8
  sequences in the first X MB; the file is not UTF-8"). A sequence is what Python's decoder replaces by one U+FFFD.

Why this threshold. The two populations are far apart. A legacy-encoded Korean file has an invalid sequence every
few bytes: the kowiki test fixture re-encoded as CP949 has ~59,000 per 100,000 bytes, and even a mostly-ASCII text
with one Korean phrase per paragraph is far above 1 per 100,000. A UTF-8 dump has none (MediaWiki stores UTF-8) or,
in crawled or concatenated text, a few stray bytes: a multibyte character cut by a careless split, a pasted Latin-1
symbol. What a repair costs sets the ceiling: every repaired sequence is one damaged position in the text (the
U+FFFD that replaces it becomes a space under spm's default nmt_nfkc rule, measured; ``<unk>`` under rules that keep
it), and 100,000 bytes of kowiki text are ~21,000 spm pieces with an 8,000-piece vocab trained on the fixture (fewer
with 32,000), so at the limit ~0.005 % of the positions are damaged -- less than the ~0.01 % ``<unk>`` the
vocabulary itself leaves at character_coverage 0.9995 (spm/train.py): a file within it trains the same model for
practical purposes. Anything denser is not "a few stray bytes" but a file in another encoding or damaged data, and
repairing it would hide that. The floor of 8 keeps a small hand-made file with one pasted symbol usable; it cannot
let a legacy file through as mojibake: CP949 and UTF-16 are recognised by their own detectors whatever the count,
and a repaired byte becomes U+FFFD, never a wrong character. The limit applies to the whole file: for a compressed
file, whose decompressed size is known only at its end, the allowance grows with the bytes read (never below what
the compressed size allows), so a damaged start can be refused a little earlier than the full-file rule would.

Bounded cost on multi-GB files. :func:`check_text_file` decides from a sample read before any output directory is
created: the first 4 MiB plus 4 blocks of 1 MiB spread evenly over the rest of a plain file (a compressed file: the
first 4 MiB only, since reaching the middle of a bz2/xz/gz stream means decompressing everything before it), each
block cut at line boundaries so that a multibyte character split by the block edge is not counted. Valid UTF-8 --
the normal case -- costs one C decode per block (~30 ms for the whole 8 MiB sample, measured). Readers that repair
while streaming keep a running count per file (:class:`Utf8Guard`) and refuse once it crosses the allowance or the
bad lines read as CP949, so a file bad only where the sample did not look is refused too, not silently repaired
(its partial output is in a temporary directory that the refusal removes).

Why not charset-normalizer or chardet (charset-normalizer 3.5.3 is even installed, as a dependency of requests).
They answer another question -- the most likely of ~90 codecs for some bytes -- while the policy needs a
deterministic answer to a narrow one: is this UTF-8 with at most a few stray bytes, and if not, is it CP949 or
UTF-16, on which line, and how many bad sequences. Measured with charset-normalizer 3.5.3 on 4 MB of the kowiki
fixture: ``from_bytes(...).best()`` names CP949 text (0.1 s) but returns *no result at all* when the 4 MB end inside
a character (a sample cut) or when UTF-8 text holds one stray byte -- the case this policy must accept and count;
it gives no line or count to put in the message; and its verdicts are heuristics that may move with its version.
UTF-8 validity, the byte-order marks and "decodes strictly as CP949 and reads as Hangul" are ~100 lines of stdlib.
"""

from __future__ import annotations

import codecs
import re
import shlex
from pathlib import Path
from typing import IO, Callable, Iterator

from koroberta.errors import ConfigError, InputError

UTF8 = "utf-8"
#: one invalid sequence per this many bytes is repaired; more is refused (see the module docstring)
BYTES_PER_INVALID = 100_000
#: invalid sequences any file may have (a small hand-made file with a pasted symbol)
MIN_ALLOWED = 8
HEAD_BYTES = 4 << 20  # the sample: the file's first 4 MiB ...
BLOCK_BYTES = 1 << 20  # ... plus BLOCKS blocks of 1 MiB spread over the rest of a plain file
BLOCKS = 4
_NUL_PROBE = 1 << 16  # bytes of the head in which a NUL-every-other-byte pattern means UTF-16 without a BOM
#: KS X 1001 syllables read from a file's bad lines that make it CP949 (see :func:`cp949_reading`): one sentence of
#: real Korean has more; a line damaged by stray bytes reads as at most 4 (measured)
CP949_EVIDENCE = 6

_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32LE", "UTF-32", "utf-32"), (b"\x00\x00\xfe\xff", "UTF-32BE", "UTF-32", "utf-32"),
         (b"\xff\xfe", "UTF-16LE", "UTF-16", "utf-16"), (b"\xfe\xff", "UTF-16BE", "UTF-16", "utf-16"))
_HANGUL = re.compile("[\uac00-\ud7a3]")
#: the strict magic numbers of the compressed formats: a text file may well start with "BZh", not with "BZh9" + pi
_COMPRESSED = ((re.compile(rb"BZh[1-9](1AY&SY|\x17rE8P\x90)"), "bz2", "bzip2 -dk"),
               (re.compile(rb"\xfd7zXZ\x00"), "xz", "xz -dk"), (re.compile(rb"\x1f\x8b\x08"), "gz", "gzip -dk"))
_CAT = {"bz2": "bzcat", "xz": "xzcat", "gz": "zcat"}


def allowed_invalid(nbytes: int) -> int:
    """Invalid UTF-8 sequences a file of ``nbytes`` bytes may hold and still be repaired (see the module docstring)."""
    return max(MIN_ALLOWED, nbytes // BYTES_PER_INVALID)


def codec_name(name: str, *, option: str = "encoding") -> str:
    """The canonical Python codec name for an ``encoding:`` value (``"UTF8"`` -> ``"utf-8"``, ``"EUC-KR"`` ->
    ``"euc_kr"``); an unknown name or a codec that does not turn bytes into text is a :class:`ConfigError`."""
    fix = ("use utf-8 (the default: the text is checked and legacy encodings are refused with the command that "
           "converts them) or the Python codec of the file, e.g. cp949, euc-kr, utf-16")
    try:
        info = codecs.lookup(str(name))
    except LookupError:
        raise ConfigError(f"{option}={name!r} is not a known text encoding", fix=fix) from None
    if not getattr(info, "_is_text_encoding", True):  # base64, zlib, rot13: byte or str transforms, not encodings
        raise ConfigError(f"{option}={name!r} is a {info.name} transform, not a text encoding", fix=fix)
    return info.name


def is_utf8(codec: str) -> bool:
    """True for the default: UTF-8 checked by this policy (stray bytes repaired), not a codec decoded strictly."""
    return codec == UTF8 or codecs.lookup(codec).name == UTF8


# -- what the bytes are ------------------------------------------------------------------------------------------------
def utf16_evidence(head: bytes) -> tuple[str, str, str, str] | None:
    """``(name, iconv name, Python codec, evidence)`` when the first bytes of a file say UTF-16/UTF-32: a byte-order
    mark, or (UTF-16 without one) NUL bytes making up >= 5 % of the first 64 KiB, four in five on the same parity --
    the high byte of every ASCII character (the other parity gets the NUL low byte of a few syllables, U+AC00 가
    among them). UTF-8 text has no NUL; binary data and UTF-32 have them on both parities."""
    for bom, name, iconv, codec in _BOMS:
        if head.startswith(bom):
            return name, iconv, codec, f"it starts with the {name} byte-order mark"
    probe = head[:_NUL_PROBE]
    even, odd = probe[0::2].count(0), probe[1::2].count(0)
    if even + odd >= max(2, len(probe) // 20):
        for nuls, other, name in ((odd, even, "UTF-16LE"), (even, odd, "UTF-16BE")):
            if nuls >= 4 * other:
                parity = "odd" if name == "UTF-16LE" else "even"
                return name, name, name.lower().replace("utf-16", "utf-16-"), \
                    f"{nuls:,} of its first {len(probe):,} bytes are NUL at {parity} offsets: ASCII in {name}"
    return None


def cp949_reading(raw: bytes) -> tuple[str, int] | None:
    """``(raw decoded as CP949, its KS X 1001 Hangul syllables)`` when ``raw`` (a line that is not valid UTF-8) reads
    as CP949/EUC-KR Korean, else None.

    Three tests, all needed: (1) strict CP949 decoding succeeds; (2) it gives at least 2 Hangul syllables of
    KS X 1001 -- the 2,350 syllables of EUC-KR, nearly all of real Korean text -- and they are at least half of its
    non-ASCII characters (a stray byte before an ASCII letter decodes as one of CP949's extension syllables, never
    as one of these); (3) in the UTF-8 view, invalid sequences outnumber valid non-ASCII characters: a UTF-8 Korean
    line with a stray byte is mostly valid UTF-8, a CP949 line mostly invalid. Measured on the 2,900 kowiki fixture
    lines: 99 % of them encoded as CP949 pass; of 280,000 copies with 1-2 random bytes inserted, 33 pass (all short
    lines such as "경과."), none with more than 4 syllables -- hence :data:`CP949_EVIDENCE` for a whole file.
    """
    try:
        text = raw.decode("cp949")
    except UnicodeDecodeError:
        return None
    non_ascii = sum(1 for c in text if c > "\x7f")
    # Python's euc_kr codec writes the other syllables as 8-byte make-up sequences: KS X 1001 ones take 2 bytes
    ksx = sum(1 for c in _HANGUL.findall(text) if len(c.encode("euc_kr")) == 2)
    if ksx < 2 or 2 * ksx < non_ascii:
        return None
    utf8 = raw.decode("utf-8", errors="replace")
    invalid = utf8.count("\ufffd") - raw.count(b"\xef\xbf\xbd")
    valid = sum(1 for c in utf8 if c > "\x7f") - utf8.count("\ufffd")
    return (text, ksx) if invalid > valid else None


def invalid_sequences(raw: bytes) -> tuple[str, int]:
    """``(raw decoded with U+FFFD for each invalid sequence, number of them)``. A U+FFFD the text really holds (the
    bytes EF BF BD) is not counted."""
    text = raw.decode("utf-8", errors="replace")
    return text, text.count("\ufffd") - raw.count(b"\xef\xbf\xbd")


# -- the messages ------------------------------------------------------------------------------------------------------
def converted_path(path: Path) -> Path:
    """Where the suggested conversion writes: ``in.txt`` -> ``in.utf8.txt``, ``wiki_00.bz2`` -> ``wiki_00.utf8``."""
    name = path.name
    for ext in (".bz2", ".xz", ".gz"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    stem, dot, suffix = name.rpartition(".")
    return path.with_name(f"{stem}.utf8.{suffix}" if dot and stem else f"{name}.utf8")


def convert_command(path: Path, iconv_name: str, compression: str | None = None) -> str:
    """The exact shell command that writes a UTF-8 copy of ``path`` (paths quoted with :func:`shlex.quote`)."""
    src, dst = shlex.quote(str(path)), shlex.quote(str(converted_path(path)))
    if compression:
        return f"{_CAT[compression]} {src} | iconv -f {iconv_name} -t UTF-8 > {dst}"
    return f"iconv -f {iconv_name} -t UTF-8 {src} > {dst}"


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1_000_000 else f"{n:,} bytes"


def _snippet(text: str, n: int = 30) -> str:
    s = " ".join(text.split())
    return s if len(s) <= n else s[:n] + "…"


def legacy_error(path: Path, name: str, iconv_name: str, codec: str, evidence: str, *, option: str | None = None,
                 compression: str | None = None) -> InputError:
    """The refusal of a file in a legacy encoding: what it is, why we think so, and the command that converts it
    (plus, where the stage can convert while reading, the ``option`` that does)."""
    fix = f"convert it to UTF-8 with `{convert_command(path, iconv_name, compression)}` and use the new file"
    if option:
        fix += f", or set `{option}: {codec}` (--{option.replace('_', '-')} {codec}) to convert while reading"
    return InputError(f"{name} text, not UTF-8 ({evidence})", path=path, fix=fix)


def generic_fix(path: Path, *, option: str | None = None, compression: str | None = None) -> str:
    """The fix for a file that is not UTF-8 in no encoding we recognise."""
    fix = (f"find its encoding (`file -i {shlex.quote(str(path))}`) and convert it to UTF-8, e.g. "
           f"`{convert_command(path, 'ENCODING', compression)}`")
    if option:
        fix += f", or set `{option}:` to that encoding to convert while reading"
    return fix


def cp949_error(path: Path, text: str, where: str, *, option: str | None = None,
                compression: str | None = None) -> InputError:
    return legacy_error(path, "CP949/EUC-KR Korean", "CP949", "cp949", f"{where} reads \"{_snippet(text)}\" as CP949",
                        option=option, compression=compression)


# -- streaming ---------------------------------------------------------------------------------------------------------
class Utf8Guard:
    """The running check of one file whose invalid UTF-8 lines a reader repairs: feed it every line that fails strict
    UTF-8 decoding (:meth:`repair`); it returns the line with U+FFFD, or refuses the file -- its bad lines read as
    CP949 Korean (:data:`CP949_EVIDENCE` syllables in all), or its count crossed :func:`allowed_invalid` of its size.
    A refused file whose bad lines read as CP949 at all gets the CP949 message: it is the likelier diagnosis.

    ``size`` is the file's size in bytes (for a compressed file: its size on disk, a lower bound that the bytes read
    so far raise). A reader feeds lines in file order (``sampled`` stays None); :func:`check_text_file` feeds the
    lines of its sample and sets ``sampled`` to the bytes sampled once it leaves the head, for the message.
    """

    def __init__(self, path: Path, size: int, *, option: str | None = None, compression: str | None = None):
        self.path, self.size, self.option, self.compression = Path(path), size, option, compression
        self.invalid = 0  # invalid sequences seen so far
        self.read = 0  # bytes of the file up to the end of the last line fed
        self.sampled: int | None = None
        self.first: str | None = None  # where the first invalid sequence was
        self.cp949_syllables = 0  # KS X 1001 syllables in the bad lines that read as CP949
        self.cp949_first: tuple[str, str] | None = None  # (where, CP949 reading) of the first such line

    def repair(self, raw: bytes, *, lineno: int | None, offset: int) -> tuple[str, int]:
        """``(line with U+FFFD, invalid sequences in it)`` for ``raw``, the bytes of a line starting at byte
        ``offset`` of the file (``lineno``: its 1-based number, None when unknown)."""
        where = f"line {lineno:,}" if lineno is not None else f"the line at byte {offset:,}"
        reading = cp949_reading(raw)
        if reading is not None:
            self.cp949_syllables += reading[1]
            if self.cp949_first is None:
                self.cp949_first = (where, reading[0])
            if self.cp949_syllables >= CP949_EVIDENCE:
                raise self.cp949_refusal()
        fixed, n = invalid_sequences(raw)
        self.invalid += n
        self.read = max(self.read, offset + len(raw))
        if self.first is None:
            self.first = where
        if self.invalid > allowed_invalid(max(self.size, self.read)):
            if self.cp949_first is not None:
                raise self.cp949_refusal()
            at = f"in the first {_size(self.read)}" if self.sampled is None else \
                f"in {_size(self.sampled)} sampled across it"
            raise InputError(f"{self.invalid:,} invalid UTF-8 sequences {at} (the first on {self.first}); the file is "
                             f"not UTF-8 (at most 1 per {BYTES_PER_INVALID:,} bytes is repaired)", path=self.path,
                             fix=generic_fix(self.path, option=self.option, compression=self.compression))
        return fixed, n

    def cp949_refusal(self) -> InputError:
        assert self.cp949_first is not None
        where, text = self.cp949_first
        return cp949_error(self.path, text, where, option=self.option, compression=self.compression)


# -- the sample check --------------------------------------------------------------------------------------------------
def compression_signature(head: bytes) -> tuple[str, str] | None:
    """``(format, decompress command)`` when ``head`` starts with a bz2/xz/gz stream's magic number."""
    for magic, kind, cmd in _COMPRESSED:
        if magic.match(head):
            return kind, cmd
    return None


def _drop_partial_tail(data: bytes) -> bytes:
    """``data`` without a UTF-8 character cut off at its end (a block edge inside a very long line)."""
    for k in range(1, min(4, len(data)) + 1):
        b = data[-k]
        if b < 0x80:
            return data
        if b >= 0xC0:  # a lead byte: is its sequence complete?
            need = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
            return data[:-k] if need > k else data
    return data


def _block(data: bytes, *, cut_start: bool, cut_end: bool) -> tuple[int, bytes]:
    """``(bytes skipped at the start, the block's whole lines)``: a block taken from the middle of a file starts
    after its first newline and ends after its last one, so no line -- and no multibyte character -- is cut."""
    skip = 0
    if cut_start:
        nl = data.find(b"\n")
        if nl >= 0:
            skip = nl + 1
        else:  # a line longer than the block: skip at most 3 continuation bytes of a cut character
            while skip < min(3, len(data)) and 0x80 <= data[skip] < 0xC0:
                skip += 1
    body = data[skip:]
    if cut_end:
        nl = body.rfind(b"\n")
        body = body[: nl + 1] if nl >= 0 else _drop_partial_tail(body)
    return skip, body


def _scan(guard: Utf8Guard, data: bytes, offset: int, first_line: int | None) -> None:
    """Feed the invalid lines of a block to ``guard``; valid UTF-8 -- the usual case -- costs one C decode."""
    try:
        data.decode("utf-8")
        return
    except UnicodeDecodeError:
        pass
    pos = offset
    for k, raw in enumerate(data.split(b"\n")):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            guard.repair(raw, lineno=None if first_line is None else first_line + k, offset=pos)
        pos += len(raw) + 1


def _sample(f: IO[bytes], size: int, seekable: bool) -> Iterator[tuple[int, bytes, int | None]]:
    """``(offset, whole lines, number of the first line or None)``: the head, then (plain files) the spread blocks."""
    head = f.read(HEAD_BYTES)
    whole = len(head) < HEAD_BYTES or not f.read(1)
    _, body = _block(head, cut_start=False, cut_end=not whole)
    yield 0, body, 1
    if whole or not seekable or size <= HEAD_BYTES + BLOCK_BYTES:
        return
    span = size - HEAD_BYTES - BLOCK_BYTES  # block k starts at HEAD + span * k / BLOCKS: the last one ends at EOF
    for k in range(1, BLOCKS + 1):
        start = HEAD_BYTES + span * k // BLOCKS
        f.seek(start)
        data = f.read(BLOCK_BYTES)
        skip, body = _block(data, cut_start=True, cut_end=start + len(data) < size)
        yield start + skip, body, None


def check_text_file(path: str | Path, *, encoding: str = UTF8, option: str | None = None,
                    compressed: bool = False) -> None:
    """Refuse ``path`` unless it is text in ``encoding`` under this module's policy, deciding from a sample (cost
    bounded whatever the size: see the module docstring). Run it before creating any output.

    ``encoding`` is ``utf-8`` (the default: UTF-16, CP949/EUC-KR and text with too many invalid sequences are
    refused) or a Python codec the reader will decode with (then the sample must decode strictly in it, and a file
    that is valid non-ASCII UTF-8 is refused: converting it would make mojibake). ``option``: the config key that
    converts while reading, named in the fix (None where the stage has none). ``compressed``: the reader
    decompresses bz2/xz/gz itself; otherwise a compressed file is refused with the command that decompresses it.
    """
    p = Path(path)
    with open(p, "rb") as raw:
        magic = raw.read(16)
    comp = compression_signature(magic)
    if comp and not compressed:
        raise InputError(f"a {comp[0]}-compressed file; this stage reads plain UTF-8 text", path=p,
                         fix=f"decompress it first (`{comp[1]} {shlex.quote(str(p))}`) and pass the result")
    kind = comp[0] if comp else None
    size = p.stat().st_size
    with _open(p, kind) as f:
        if not is_utf8(encoding):
            _check_codec_sample(p, f, encoding, option)
            return
        guard = Utf8Guard(p, size, option=option, compression=kind)
        sampled = 0
        for offset, data, first_line in _sample(f, size, seekable=kind is None):
            sampled += len(data)
            if offset == 0:
                found = utf16_evidence(data if data else magic)
                if found:
                    name, iconv_name, codec, evidence = found
                    raise legacy_error(p, name, iconv_name, codec, evidence, option=option, compression=kind)
            else:
                guard.sampled = sampled
            _scan(guard, data, offset, first_line)


def _open(p: Path, kind: str | None) -> IO[bytes]:
    if kind is None:
        return open(p, "rb")
    from koroberta.corpus.sources import open_binary  # the readers' own decompression, not a second copy of it

    return open_binary(p)


def _check_codec_sample(p: Path, f: IO[bytes], codec: str, option: str | None) -> None:
    """The head of a file the reader will decode with ``codec``: it must decode strictly, and must not be UTF-8
    already (valid UTF-8 with non-ASCII characters is never a legacy-encoded text; decoding it again is mojibake)."""
    head = f.read(HEAD_BYTES)
    key = option or "encoding"
    if not codec.startswith("utf-8") and not head.isascii():
        try:
            codecs.utf_8_decode(head, "strict", False)  # not final: the head may end inside a character
        except UnicodeDecodeError:
            pass
        else:
            raise InputError(f"already UTF-8 (its first {_size(len(head))} decode as UTF-8), but `{key}: {codec}` "
                             f"asks to convert it from {codec}", path=p,
                             fix=f"remove `{key}: {codec}` (--{key.replace('_', '-')}): UTF-8 is the default")
    if codec.startswith(("utf-16", "utf-32")) and head and utf16_evidence(head) is None:
        # nearly any byte pairs decode as UTF-16, so strictness alone would let a CP949 or UTF-8 file through
        raise InputError(f"not {codec} text: no byte-order mark and no NUL bytes (UTF-16 text has one or the other)",
                         path=p, fix=f"set `{key}:` to the file's real encoding (`file -i {shlex.quote(str(p))}` may "
                                     "tell; leave it out for UTF-8)")
    dec = codecs.getincrementaldecoder(codec)("strict")
    try:
        dec.decode(head, final=len(head) < HEAD_BYTES)
    except UnicodeDecodeError as e:
        raise decode_error(p, codec, e.start, e.object[e.start:e.end], key) from None
    except UnicodeError as e:  # e.g. utf-16 without a byte-order mark: the codec cannot tell the byte order
        raise codec_error(p, codec, e, key) from None


def codec_error(p: Path, codec: str, e: UnicodeError, option: str) -> InputError:
    return InputError(f"cannot be read as {codec} ({e})", path=p,
                      fix=f"set `{option}:` to the file's real encoding (UTF-16 without a byte-order mark: utf-16-le "
                          "or utf-16-be)")


def decode_error(p: Path, codec: str, at: int, bad: bytes, option: str) -> InputError:
    return InputError(f"byte {at:,} ({bad[:4].hex(' ').upper()}) is not valid {codec}: the file is not in the "
                      f"encoding `{option}: {codec}` names", path=p,
                      fix=f"set `{option}:` to the file's real encoding (`file -i {shlex.quote(str(p))}` may tell; "
                          "leave it out for UTF-8), or repair the file at that byte")


# -- converting while reading ------------------------------------------------------------------------------------------
def iter_decoded_lines(f: IO[bytes], codec: str, path: Path, *, option: str = "encoding",
                       block: int = 1 << 20, max_line_chars: int | None = None,
                       too_long: Callable[[int], Exception] | None = None) -> Iterator[str]:
    """The lines of binary stream ``f`` decoded strictly with ``codec``, each with its ``\\n`` (split on ``\\n``
    only, as the UTF-8 readers split, so both give the same lines for the same text). A byte that does not decode
    is an :class:`InputError` naming its offset in the (decompressed) file.

    ``max_line_chars``: a line still without its ``\\n`` past this many characters raises ``too_long(line
    number)`` as soon as the decoded text shows it -- a file without line breaks is never held whole (memory stays
    at about this bound plus one block)."""
    dec = codecs.getincrementaldecoder(codec)("strict")
    offset = 0  # bytes handed to the decoder before this block
    rest = ""
    lineno = 0
    while True:
        data = f.read(block)
        pending = len(dec.getstate()[0])  # bytes of a character cut by the previous block, held by the decoder
        try:
            text = dec.decode(data, final=not data)
        except UnicodeDecodeError as e:  # e.start counts from the held bytes, which precede this block
            raise decode_error(path, codec, offset - pending + e.start, e.object[e.start:e.end], option) from None
        except UnicodeError as e:
            raise codec_error(path, codec, e, option) from None
        offset += len(data)
        if text:
            lines = (rest + text).split("\n")
            rest = lines.pop()
            for line in lines:
                lineno += 1
                if max_line_chars is not None and len(line) > max_line_chars and too_long is not None:
                    raise too_long(lineno)
                yield line + "\n"
            if max_line_chars is not None and len(rest) > max_line_chars and too_long is not None:
                raise too_long(lineno + 1)
        if not data:
            break
    if rest:
        yield rest


# -- whole files in memory (eval / finetune) ---------------------------------------------------------------------------
def decode_utf8(data: bytes, path: str | Path) -> str:
    """``data`` (a whole file) decoded as UTF-8 with a BOM dropped, for readers that allow no repair: UTF-16 and
    CP949/EUC-KR are refused with the same message as every stage, any other invalid byte with its line."""
    p = Path(path)
    found = utf16_evidence(data)
    if found:
        name, iconv_name, codec, evidence = found
        raise legacy_error(p, name, iconv_name, codec, evidence)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        first = e
    # CP949 evidence, if any, is on the first bad lines: look at up to 20 of them, within 4 MiB of the first
    start = data.rfind(b"\n", 0, first.start) + 1
    line = data.count(b"\n", 0, start) + 1
    bad = 0
    for n, raw in enumerate(data[start:start + HEAD_BYTES].split(b"\n"), line):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            reading = cp949_reading(raw)
            if reading is not None:  # refused either way: name the encoding when a bad line reads as one
                raise cp949_error(p, reading[0], f"line {n:,}") from None
            bad += 1
            if bad == 20:
                break
    raise InputError(f"line {line}: not UTF-8 ({first.reason} at byte {first.start})", path=p,
                     fix=generic_fix(p)) from None
