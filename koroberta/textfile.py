"""Reading split text for spm training and encoding: streaming, UTF-8 checked, per-line repair counted.

Why a repair step at all: fairseq's ``tokenize_line`` splits piece text on Python's ``\\s`` (which includes
``\\x1c``-``\\x1f``, ``\\x85``, ``\\u2028``, ``\\u3000`` ...). A character spm does not know comes back as an ``<unk>``
piece *spelled with that character*; if the character is whitespace to Python, the text path drops or splits the
piece and every later id in the line shifts relative to spm's own ids. Normalising whitespace/control characters
before spm sees the line removes that failure mode for both the text path and the fused path.

The repair is the corpus stage's own cleaner (``koroberta.text.clean_text``), so a repaired line is
exactly what the corpus stage would have written.

Encoding: the one policy of :mod:`koroberta.encoding`. A file that is UTF-16, CP949/EUC-KR or not UTF-8 is refused
before its first line is read (:func:`~koroberta.encoding.check_text_file`, with the ``iconv`` command that
converts it); stray invalid bytes in UTF-8 text are repaired line by line (``bad_lines: repair``), within the
allowance of :func:`~koroberta.encoding.allowed_invalid` -- a file past it while streaming is refused, not repaired.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Iterator

from koroberta.encoding import Utf8Guard, check_text_file
from koroberta.text import clean_text, find_special_literal
from koroberta.errors import InputError

# Literal fairseq/HF special tokens inside text (koroberta.text.special_literals, the one definition):
# spm splits them into ordinary pieces (no id shift), but the HF tokenizer reads "<mask>" in raw text as the mask
# token, so convert's token-id parity fails on such a line. The corpus stage removes them; text that still holds
# one was not made by it: counted here (repair) or refused (error), never silently changed.
# anything clean_text would change: C0/C1 controls and every Python whitespace character other than the plain
# space. \n is left out: it never occurs inside a line, and _repair searches the \n-joined chunk first.
_DIRTY_RE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]|[^\S \n]")


@dataclass
class Repairs:
    """Per-file counts of repaired lines (all zero for text written by the corpus stage)."""

    control_or_whitespace: int = 0  # lines where control chars were removed / odd whitespace became " "
    non_utf8: int = 0  # lines with invalid UTF-8 (bytes replaced by U+FFFD, a space to spm's nmt_nfkc rule)
    special_literals: int = 0  # lines containing a literal <mask>, <s>, ... (kept as text, counted; see above)
    examples: list[str] = field(default_factory=list)  # first few "line N: what" notes

    def note(self, lineno: int, what: str) -> None:
        if len(self.examples) < 5:
            self.examples.append(f"line {lineno}: {what}")

    def to_dict(self) -> dict[str, object]:
        return {"control_or_whitespace": self.control_or_whitespace, "non_utf8": self.non_utf8,
                "special_literals": self.special_literals, "examples": list(self.examples)}

    @property
    def total(self) -> int:
        return self.control_or_whitespace + self.non_utf8 + self.special_literals


def _decode(lines: list[bytes], first_lineno: int, path: Path, policy: str, rep: Repairs, guard: Utf8Guard,
            offset: int) -> list[str]:
    """The chunk ``lines`` (starting at line ``first_lineno``, byte ``offset``) as text; a bad line goes to ``guard``
    first (a CP949 line or a file past the allowance is refused whatever the policy), then the policy."""
    data = b"".join(lines)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        out = []
        pos = offset
        for k, raw in enumerate(lines):
            try:
                out.append(raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                n = first_lineno + k
                fixed, _ = guard.repair(raw, lineno=n, offset=pos)
                if policy == "error":
                    raise InputError(f"line {n} is not valid UTF-8 (byte {e.start}: {raw[e.start:e.start + 4]!r})",
                                     path=path, fix="re-run `koroberta corpus` on the source, or set "
                                                    "preprocess.bad_lines: repair to replace bad bytes") from None
                rep.non_utf8 += 1
                rep.note(n, "invalid UTF-8 replaced by U+FFFD")
                out.append(fixed)
            pos += len(raw)
        text = "".join(out)
    parts = text.split("\n")
    if text.endswith("\n"):
        parts.pop()
    return parts


def _repair(chunk: list[str], first_lineno: int, path: Path, policy: str, rep: Repairs,
            literals: bool = True) -> list[str]:
    joined = "\n".join(chunk)  # one regex pass over the chunk: the common (clean) case costs ~1 ms per 20k lines
    if _DIRTY_RE.search(joined):
        for k, line in enumerate(chunk):
            if _DIRTY_RE.search(line):
                n = first_lineno + k
                if policy == "error":
                    bad = _DIRTY_RE.search(line).group()  # type: ignore[union-attr]
                    raise InputError(f"line {n} contains control/whitespace character {bad!r}", path=path,
                                     fix="clean the text with `koroberta corpus`, or set bad_lines: repair")
                chunk[k] = clean_text(line)
                rep.control_or_whitespace += 1
                rep.note(n, "control/whitespace characters normalised")
    if literals and find_special_literal(joined) is not None:
        for k, line in enumerate(chunk):
            lit = find_special_literal(line)
            if lit is not None:
                n = first_lineno + k
                if policy == "error":
                    raise InputError(f"line {n} contains a literal {lit!r}", path=path,
                                     fix="rebuild the text with `koroberta corpus build` (its cleaner removes these), "
                                         "or set bad_lines: repair (kept as plain text and counted)")
                rep.special_literals += 1
                rep.note(n, f"literal {lit} kept as text")
    return chunk


def iter_line_chunks(path: str | Path, chunk_lines: int = 20000, *, policy: str = "repair",
                     repairs: Repairs | None = None, checked: bool = False,
                     literals: bool = True) -> Iterator[list[str]]:
    """Yield the lines of ``path`` (without ``\\n``; blank lines kept) in chunks of ``chunk_lines``.

    ``literals``: count (or refuse) koroberta's literal special tokens (``<mask>`` ...). An encoder whose tokenizer
    has other special strings (an imported HF tokenizer: ``[MASK]``...) passes False and handles its own.

    Lines are split on ``\\n`` only (not on ``\\r``/``\\u2028``, which :meth:`str.splitlines` would split on, and
    which would change the line count relative to the input). Memory is bounded by one chunk. The file's encoding
    is checked first (see the module docstring) unless the caller already did (``checked``).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError("text file not found", path=p, fix="run `koroberta corpus` first or pass the right split dir")
    if not checked:
        check_text_file(p)
    rep = repairs if repairs is not None else Repairs()
    guard = Utf8Guard(p, p.stat().st_size)
    lineno = 1
    offset = 0
    with open(p, "rb") as f:
        while True:
            raw = list(islice(f, chunk_lines))
            if not raw:
                break
            chunk = _decode(raw, lineno, p, policy, rep, guard, offset)
            yield _repair(chunk, lineno, p, policy, rep, literals)
            lineno += len(raw)
            offset = f.tell()
