"""Decontamination: find corpus documents that contain a text of an evaluation set (issue 22).

:func:`load_items` reads the evaluation files (NSMC TSV, KLUE JSON, plain text) into :class:`EvalItem`;
:class:`Decontaminator` indexes them and says, per corpus document, which item it contains. Texts are compared after
:func:`koroberta.corpus.dedup.normalize` (NFKC, case-folded, punctuation/symbols and whitespace as one space), so
quotes, full-width forms or a changed ``!!`` do not hide a copy. Figures: ``bench/dedup_bench.py`` part (e), the
evaluation set being all 150,000 NSMC-format reviews and the corpus 10,000 real kowiki articles; tables in
bench/results/dedup.md.

Two rules
    * An item of at least ``n_words`` words is indexed by its word ``n_words``-grams; a document sharing any one of
      them matches (GPT-3's rule, there with 13 English words).
    * A shorter item is indexed whole and matches where it is a contiguous run of the document's words: a substring
      on word boundaries, because a Korean word is a stem plus particles and endings -- ``재밌다`` inside ``안재밌다``
      or ``재밌다고`` is not the item. Lookup: first word -> length in words -> normalised text, tried only at the
      positions of a document word that starts some item, after one C-level ``isdisjoint`` test: 0.08 CPU-s for
      200 articles against 36,435 short items, where testing every item as a substring of every document takes 16.1
      (same verdicts). The whole scan, both rules and the normalisation, runs at ~8 MB of text per second.
    * Items under ``min_chars`` normalised characters (default 20) are skipped and counted: ``굿`` or ``최고`` would
      flag every document that uses the word. 57,301 of the 149,994 non-empty reviews are that short.

Why n_words = 8
    A Korean word (eojeol) carries a stem and its particles or endings, ~1.5-2 English words, so GPT-3's 13 is far
    longer here: most reviews have fewer than 13 words, and at 13 only 23,039 of the 92,693 indexable reviews get
    n-grams (the rest must appear whole). Measured for n in 6, 8, 10, 13: kowiki articles flagged although nothing
    was planted 10 / 5 / 3 / 3 of 10,000; planted reviews found when copied whole as a paragraph or quoted inside
    one: 100 % for every n; a copied fragment (a contiguous 60 % of a review's words) found 42 / 25 / 18 / 12 %.
    8 halves the false positives of 6 and keeps twice the fragment recall of 13; the 2 it flags beyond 10 come from a
    review that is a URL and one that counts ``10 9 8 ... 0``. At every n the remaining 3 are short items that are
    titles or quotations (``★The Lord of the Rings★``, ``All you need is love.``) found in articles that quote them: no n
    changes those; they are what a 20-character floor lets through.
"""

from __future__ import annotations

import re

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from koroberta.corpus.dedup import normalize
from koroberta.encoding import check_text_file
from koroberta.errors import InputError

#: the KLUE fields that hold text, in the order an object's items are taken
KLUE_FIELDS = ("premise", "hypothesis", "sentence1", "sentence2", "sentence", "text")
_NSMC_LAYOUT = "NSMC layout: a header `id<TAB>document<TAB>label`, then one review per line"
_KLUE_LAYOUT = f"KLUE layout: a JSON list of objects with text in {', '.join(KLUE_FIELDS)}"


@dataclass(frozen=True)
class EvalItem:
    """One text of an evaluation set: the file it came from, its 1-based line there, the text as written."""

    file: str
    line: int
    text: str


def _is_json(text: str) -> bool:
    """A JSON list of objects (``[`` then ``{`` or ``]``) or a JSON object / JSON Lines (``{``) -- so a plain-text
    file whose first line opens with a bracket (``[속보] ...``) stays plain text."""
    s = text.lstrip()
    if s.startswith("{"):
        return True
    return s.startswith("[") and s[1:].lstrip()[:1] in ("{", "]")


def _load_tsv(p: Path) -> list[EvalItem]:
    from koroberta.eval.readers import read_table

    numbers, rows = read_table(p, ["document"], layout=_NSMC_LAYOUT,
                               column_fix="use the NSMC header line `id<TAB>document<TAB>label`")
    return [EvalItem(str(p), n, r[0]) for n, r in zip(numbers, rows) if r[0].strip()]


def _load_json(p: Path) -> list[EvalItem]:
    from koroberta.eval.readers import read_json_records

    out: list[EvalItem] = []
    for n, rec in read_json_records(p, layout=_KLUE_LAYOUT):
        if not isinstance(rec, dict):
            raise InputError(f"line {n}: expected a JSON object, found {type(rec).__name__}", path=p,
                             fix=f"use the {_KLUE_LAYOUT}")
        found = [f for f in KLUE_FIELDS if f in rec]
        if not found:
            raise InputError(f"line {n}: the object has none of the text fields {', '.join(KLUE_FIELDS)} (its "
                             f"fields: {', '.join(list(rec)[:8])})", path=p, fix=f"use the {_KLUE_LAYOUT}")
        for f in found:
            v = rec[f]
            if not isinstance(v, str):
                raise InputError(f"line {n}: field '{f}' must be a string, found {type(v).__name__}", path=p,
                                 fix="correct or delete that record")
            if v.strip():
                out.append(EvalItem(str(p), n, v))
    return out


def load_items(paths: Sequence[Path]) -> list[EvalItem]:
    """The evaluation texts of ``paths``, each file's layout detected from its content:

    * NSMC TSV -- a header line with a ``document`` column (``id<TAB>document<TAB>label``): that column, one item per
      row (empty documents skipped);
    * KLUE JSON -- a JSON list of objects (or JSON Lines): one item per non-empty field of :data:`KLUE_FIELDS`;
    * otherwise plain text: one item per non-empty line.

    A file that is not UTF-8 (or is compressed) is refused by :func:`koroberta.encoding.check_text_file` with the
    command that converts it; a malformed file raises :class:`~koroberta.errors.InputError` naming the file and line.
    """
    from koroberta.eval.readers import read_text

    items: list[EvalItem] = []
    for path in paths:
        p = Path(path)
        if not p.is_file():
            raise InputError("file not found" if not p.exists() else "not a file", path=p,
                             fix="pass NSMC TSV, KLUE JSON or plain-text evaluation files")
        check_text_file(p)
        text = read_text(p, layout="NSMC TSV, KLUE JSON or one text per line")
        header = text.split("\n", 1)[0].rstrip("\r").split("\t")
        if len(header) > 1 and "document" in header:
            items += _load_tsv(p)
        elif _is_json(text):
            items += _load_json(p)
        else:  # split on "\n" only (not str.splitlines: U+2028, \x1c ... would shift the line numbers)
            items += [EvalItem(str(p), n, line.strip()) for n, line in enumerate(text.split("\n"), 1)
                      if line.strip()]
    return items


#: a run of one character, 3+ long: shortened to 2 on both sides. The web profile shortens repeats before the merge
#: (ㅋㅋㅋㅋ -> ㅋㅋ, 조오오오오온 -> 조오오온) while the evaluation file keeps them, so without this a review copied
#: into the pretraining text would no longer contain its own evaluation row (bench/results/corpus_stage.md: 16 of
#: 623 planted rows kept). Runs of 2 are left alone: they are ordinary spelling (많이, 빨리).
_RUNS = re.compile(r"(.)\1{2,}")


def decontamination_key(text: str) -> str:
    """The text decontamination compares: :func:`~koroberta.corpus.dedup.normalize` with every run of one character
    shortened to two."""
    return _RUNS.sub(r"\1\1", normalize(text))


class Decontaminator:
    """Flags documents that contain an evaluation text (the two rules and the defaults: the module docstring).

    Items of at least ``n_words`` words (after :func:`decontamination_key`) are indexed by their word
    ``n_words``-grams: a document sharing any one of them matches. Shorter items are indexed whole and match where
    the document's normalised words contain them as a contiguous run (a substring on word boundaries). Items shorter
    than ``min_chars`` normalised characters are skipped and counted.
    """

    def __init__(self, items: Iterable[EvalItem], *, n_words: int = 8, min_chars: int = 20) -> None:
        if n_words < 1:
            raise ValueError(f"n_words must be >= 1, not {n_words}")
        self.n_words, self.min_chars = n_words, min_chars
        self._items: list[EvalItem] = []
        self._ngrams: dict[tuple[str, ...], int] = {}
        # short items: first word -> {length in words -> {normalised text -> item index}}
        self._whole: dict[str, dict[int, dict[str, int]]] = {}
        self._skipped = self._whole_items = 0
        for item in items:
            self._items.append(item)
            idx = len(self._items) - 1
            norm = decontamination_key(item.text)
            if len(norm) < min_chars:
                self._skipped += 1
                continue
            words = norm.split(" ")
            if len(words) >= n_words:
                for g in zip(*(words[k:] for k in range(n_words))):
                    self._ngrams.setdefault(g, idx)
            else:
                self._whole_items += 1
                self._whole.setdefault(words[0], {}).setdefault(len(words), {}).setdefault(norm, idx)

    def stats(self) -> dict[str, int]:
        return {"items": len(self._items), "skipped_short": self._skipped, "indexed_ngrams": len(self._ngrams),
                "indexed_whole": self._whole_items}

    def match(self, text: str) -> EvalItem | None:
        """An evaluation item ``text`` contains (n-gram items first, then whole short items), else None."""
        words = decontamination_key(text).split(" ")
        if self._ngrams and len(words) >= self.n_words:
            hit = next(filter(self._ngrams.__contains__, zip(*(words[k:] for k in range(self.n_words)))), None)
            if hit is not None:
                return self._items[self._ngrams[hit]]
        if self._whole and not self._whole.keys().isdisjoint(words):
            whole = self._whole
            for i, w in enumerate(words):
                by_len = whole.get(w)
                if by_len is None:
                    continue
                for k, texts in by_len.items():
                    if i + k <= len(words):
                        idx = texts.get(" ".join(words[i:i + k]))
                        if idx is not None:
                            return self._items[idx]
        return None
