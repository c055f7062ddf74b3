"""Text normalisation shared by the corpus stage (documents), spm and preprocess (per-line repair) and convert's
parity check (literal special tokens).

Decision (agreed with the spm stage): corpus text is Unicode **NFC**. NFC is lossless canonical composition, so
the corpus stays usable for anything else (search, other tokenizers), while SentencePiece applies its own
``nmt_nfkc`` rule at training *and* encode time; the tokenizer therefore sees identically normalised input in
spm, fairseq and HF, whatever normal form the text arrives in.

On top of NFC, :func:`clean_text`

* turns every whitespace-class character (Python ``\\s`` in ``str`` patterns: tab, newline, U+0085, U+00A0,
  U+1680, U+2000-U+200A, U+2028/U+2029, U+202F, U+205F, U+3000, and the separators \\x1c-\\x1f) into one plain
  space, collapses runs and strips both ends — a sentence or paragraph is one line;
* removes control and format characters that carry no text: C0/C1 controls (``Cc``, except the whitespace ones
  above, which became spaces), U+FEFF (BOM / ZWNBSP), the zero-width characters U+200B-U+200D, U+2060, soft
  hyphen U+00AD, bidi marks U+200E/U+200F and U+202A-U+202E, U+2066-U+2069.

Speed: one regex ``sub`` (deletions), one ``unicodedata.normalize`` and ``" ".join(s.split())``; NFC is skipped with
``unicodedata.is_normalized`` when the text is already NFC (almost always for Korean Wikipedia). Measured
~45 MB/s on 1 core on kowiki paragraphs (see bench/results/corpus.md), so the preprocess stage can call it per line.

Literal special tokens (:func:`special_literals`: ``<s> <pad> </s> <unk> <mask>``, the tokens the exported HF tokenizer
matches in raw text) are found by :func:`find_special_literal` and removed by :func:`strip_special_literals`. In text
they would be split into ordinary pieces by spm/fairseq but read as one special id by the HF tokenizer, so a model
trained on them cannot pass the convert stage's token-id parity check. The corpus stage removes them once, per
document (:func:`koroberta.corpus.wikitext.remove_special_literals`); spm/preprocess only count or refuse them.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata


def _delete_class() -> str:
    cps = [cp for cp in range(0x20) if not chr(cp).isspace()] + [0x7F]
    cps += [cp for cp in range(0x80, 0xA0) if not chr(cp).isspace()]  # C1 (U+0085 is whitespace: -> space)
    cps += [0x00AD, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2060, 0xFEFF,
            0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069]
    return "[" + "".join(f"\\u{cp:04x}" for cp in cps) + "]+"


# A regex class, not str.translate(dict): translate with a dict table costs ~18 us per kowiki paragraph (it maps
# every character through a dict lookup), the regex scan ~1 us when nothing matches (measured on kowiki-sample).
_DELETE = re.compile(_delete_class())


def collapse_ws(s: str) -> str:
    """Every ``\\s`` run -> one space, stripped. ``str.split()`` uses the same whitespace set as ``re``'s ``\\s``."""
    return " ".join(s.split())


def normalize_block(s: str, form: str) -> str:
    """Controls removed and ``form`` ("NFC", "NFKC", "none") applied to a multi-line block, newlines kept."""
    s = _DELETE.sub("", s)
    if form != "none" and not unicodedata.is_normalized(form, s):
        s = unicodedata.normalize(form, s)
    return s


def normalize_form(s: str, form: str) -> str:
    """:func:`normalize_block` then every whitespace run -> one space, stripped: one line of text."""
    return " ".join(normalize_block(s, form).split())


def clean_text(s: str) -> str:
    """NFC + whitespace collapse + control/zero-width removal, stripped. See the module docstring."""
    return normalize_form(s, "NFC")


@functools.lru_cache(maxsize=1)
def special_literals() -> tuple[str, ...]:
    """The special tokens the exported HF tokenizer matches in raw text: fairseq's four specials and ``<mask>``.

    Derived from :mod:`koroberta.layout` (the one definition; ``convert.vocab.build_tokenizer`` adds exactly these
    as special tokens). Imported on first use, not at module import: ``koroberta.spm`` imports this module.
    """
    from koroberta.layout import FAIRSEQ_SPECIALS, MASK

    return (*FAIRSEQ_SPECIALS, MASK)


@functools.lru_cache(maxsize=8)
def _special_re(extra: tuple[str, ...] = ()) -> re.Pattern:
    # longest first, so that of two literals where one is a prefix of the other the whole one matches; scanning a
    # page without any costs ~1 ms per 2.6 M characters (measured on tests/fixtures/kowiki-docs.txt x 10)
    lits = sorted(set(special_literals()) | set(extra), key=lambda x: (-len(x), x))
    return re.compile("|".join(re.escape(x) for x in lits))


def find_special_literal(s: str, extra: tuple[str, ...] = ()) -> str | None:
    """The first literal special token in ``s`` (``"<mask>"``, ``"</s>"``, ... and ``extra``: an imported
    tokenizer's ``[MASK]``, ``[CLS]`` ...), or None."""
    m = _special_re(tuple(extra)).search(s)
    return m.group() if m else None


def strip_special_literals(s: str, extra: tuple[str, ...] = ()) -> tuple[str, int]:
    """``s`` with every literal special token (and every string of ``extra``) removed, and how many were removed.

    Removed, not respelled: like the HTML tags the wikitext cleaner drops (``<s>struck</s>`` keeps "struck"), they
    are markup or text about tokenizers, not prose, and once removed no tokenizer can read them differently (a
    respelling such as ``〈mask〉`` would put a made-up word into the corpus). Repeated until none is left,
    because removing one can join its neighbours into another (``"<<mask>s>"`` -> ``"<s>"``). Whitespace is not
    collapsed here (the caller does, once per changed line).
    """
    rx = _special_re(tuple(extra))
    total = 0
    while True:
        s, n = rx.subn("", s)
        if not n:
            return s, total
        total += n


__all__ = ["clean_text", "normalize_form", "normalize_block", "collapse_ws", "special_literals",
           "find_special_literal", "strip_special_literals"]

if __name__ == "__main__":  # pragma: no cover - handy filter: python -m koroberta.text < in > out
    for line in sys.stdin:
        print(clean_text(line))
