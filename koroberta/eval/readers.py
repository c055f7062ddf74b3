"""Read benchmark files in the layouts their users have on disk, validating them line by line.

Every reader returns a :class:`TaskData` (texts, optional second texts, targets, and the 1-based line each example
came from) or raises :class:`~koroberta.errors.InputError` naming the file, the line and the fix. The readers are
plain Python (no ``datasets``/pandas): a stdlib parser knows the line it is on, so a bad row is reported exactly.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from koroberta.encoding import decode_utf8
from koroberta.errors import InputError

NLI_LABELS = ["entailment", "neutral", "contradiction"]  # KLUE-NLI's (and HF `klue/nli`'s) class-id order
NER_TYPES = ["DT", "LC", "OG", "PS", "QT", "TI"]
NER_TAGS = [f"{b}-{t}" for t in NER_TYPES for b in ("B", "I")] + ["O"]  # KLUE's label list order


@dataclass
class TaskData:
    """Examples of one file. ``target`` is a class id, a float score, or (NER) one tag id per character of
    ``text`` (``text`` is then the concatenated characters, spaces included)."""

    path: Path
    text: list[str]
    target: list[Any]
    line: list[int]
    text_pair: list[str] | None = None
    ids: list[str] = field(default_factory=list)  # sentence ids (NER), for messages

    def __len__(self) -> int:
        return len(self.text)

    def subset(self, idx: Sequence[int]) -> "TaskData":
        return TaskData(self.path, [self.text[i] for i in idx], [self.target[i] for i in idx],
                        [self.line[i] for i in idx],
                        [self.text_pair[i] for i in idx] if self.text_pair is not None else None,
                        [self.ids[i] for i in idx] if self.ids else [])


# -- raw text ----------------------------------------------------------------------------------------------------------
def read_text(path: str | Path, *, layout: str) -> str:
    """The file decoded as UTF-8 (a BOM is dropped); missing, empty and non-UTF-8 files are errors. Encoding errors
    are the ones every stage gives (:func:`koroberta.encoding.decode_utf8`): UTF-16 and CP949/EUC-KR files are named
    as such with the ``iconv`` command that converts them; there is no repair -- a benchmark's every line counts."""
    p = Path(path)
    if not p.is_file():
        raise InputError("file not found" if not p.exists() else "not a file", path=p, fix=f"pass a file in the {layout}")
    data = p.read_bytes()
    text = decode_utf8(data, p)
    if not text.strip():
        raise InputError("file is empty" if not data else "file holds only whitespace", path=p,
                         fix=f"pass a file in the {layout}")
    return text


def _lines(text: str) -> list[str]:
    """Lines without their terminators (LF or CRLF); a final newline does not make an extra line."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [l[:-1] if l.endswith("\r") else l for l in lines]


# -- TSV with a header -------------------------------------------------------------------------------------------------
def read_table(path: str | Path, columns: Sequence[str], *, layout: str, column_fix: str) -> tuple[list[int], list[list[str]]]:
    """``(line numbers, rows)`` of a tab-separated file with a header line; each row holds ``columns`` in order.

    Quoting is off: NSMC and KorNLI text contains bare double quotes (``"재밌다"고``). Blank lines are skipped; any
    other line must have exactly the header's number of fields.
    """
    p = Path(path)
    lines = _lines(read_text(p, layout=layout))
    header = lines[0].split("\t")
    missing = [c for c in columns if c not in header]
    if missing:
        raise InputError(f"line 1: header {header[:6]} lacks column(s) {', '.join(missing)}", path=p, fix=column_fix)
    idx = [header.index(c) for c in columns]
    numbers: list[int] = []
    rows: list[list[str]] = []
    for n, line in enumerate(lines[1:], 2):
        if line == "":
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            raise InputError(f"line {n}: {len(fields)} tab-separated field(s) where the header has {len(header)}",
                             path=p, fix="every row needs the header's fields (a tab inside a text must be removed)")
        numbers.append(n)
        rows.append([fields[i] for i in idx])
    if not rows:
        raise InputError("has a header line but no data rows", path=p, fix=f"pass the full file ({layout})")
    return numbers, rows


def labels_found(labels: Sequence[str], limit: int = 12) -> str:
    """The distinct labels of a file, sorted and space-separated as ``--labels`` takes them (``neg pos``), or
    ``L1 L2 ...`` when there are too many to be a label set (a text column taken for the labels)."""
    found = sorted({lab.strip() for lab in labels})
    return " ".join(found) if len(found) <= limit else "L1 L2 ..."


def _label_ids(p: Path, numbers: list[int], labels: list[str], label_set: Sequence[str], what: str,
               label_fix: Callable[[str], str] | None = None) -> list[int]:
    ids = {lab: i for i, lab in enumerate(label_set)}
    out = []
    for n, lab in zip(numbers, labels):
        lab = lab.strip()
        if lab not in ids:
            if label_fix is not None:  # the caller knows which command (and option) sets the label set
                fix = label_fix(labels_found(labels))
            elif what == "label":
                fix = f"correct or delete that line, or pass --labels with the full label set (--labels " \
                      f"{labels_found(labels)})"
            else:
                fix = "correct or delete that line"
            raise InputError(f"line {n}: {what} {lab!r} is not one of {', '.join(label_set)}", path=p, fix=fix)
        out.append(ids[lab])
    return out


def read_single_tsv(path: str | Path, text_column: str, label_column: str, labels: Sequence[str], *,
                    layout: str, column_fix: str, label_fix: Callable[[str], str] | None = None) -> TaskData:
    """One text column + one label column (NSMC: ``document`` / ``label``, labels 0/1). ``label_fix(found)``: the
    fix for a label outside ``labels``, given the file's labels as ``--labels`` takes them (default: pass
    --labels)."""
    numbers, rows = read_table(path, [text_column, label_column], layout=layout, column_fix=column_fix)
    target = _label_ids(Path(path), numbers, [r[1] for r in rows], labels, "label", label_fix)
    return TaskData(Path(path), [r[0] for r in rows], target, numbers)


def read_kornli_tsv(path: str | Path) -> TaskData:
    """KorNLI (kakaobrain): ``sentence1<TAB>sentence2<TAB>gold_label``."""
    layout = "KorNLI layout: a header `sentence1<TAB>sentence2<TAB>gold_label`, then one pair per line"
    numbers, rows = read_table(path, ["sentence1", "sentence2", "gold_label"], layout=layout,
                               column_fix="use the KorNLI header line `sentence1<TAB>sentence2<TAB>gold_label`")
    for n, r in zip(numbers, rows):
        if not r[0].strip() or not r[1].strip():
            raise InputError(f"line {n}: empty sentence1 or sentence2", path=path, fix="correct or delete that line")
    target = _label_ids(Path(path), numbers, [r[2] for r in rows], NLI_LABELS, "gold_label")
    return TaskData(Path(path), [r[0] for r in rows], target, numbers, text_pair=[r[1] for r in rows])


# -- KLUE JSON ---------------------------------------------------------------------------------------------------------
def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def read_json_records(path: str | Path, *, layout: str) -> list[tuple[int, Any]]:
    """``(line, record)`` pairs of a JSON array file (KLUE's layout) or of a JSON Lines file.

    Elements are decoded one at a time with the stdlib decoder so that each one knows the line it starts on.
    """
    p = Path(path)
    text = read_text(p, layout=layout)
    newlines = [i for i, c in enumerate(text) if c == "\n"]

    def line_of(pos: int) -> int:
        return bisect.bisect_left(newlines, pos) + 1

    dec = json.JSONDecoder()

    def decode(pos: int) -> tuple[Any, int]:
        try:
            return dec.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise InputError(f"line {e.lineno}: invalid JSON ({e.msg})", path=p, fix=f"repair the file ({layout})") from None

    out: list[tuple[int, Any]] = []
    i = _skip_ws(text, 0)
    if text[i] == "[":
        i = _skip_ws(text, i + 1)
        if text[i:i + 1] != "]":
            while True:
                obj, end = decode(i)
                out.append((line_of(i), obj))
                i = _skip_ws(text, end)
                if text[i:i + 1] == ",":
                    i = _skip_ws(text, i + 1)
                    continue
                if text[i:i + 1] == "]":
                    break
                raise InputError(f"line {line_of(i)}: expected ',' or ']' in the JSON array", path=p,
                                 fix=f"repair the file ({layout})")
        if _skip_ws(text, i + 1) != len(text):
            raise InputError(f"line {line_of(_skip_ws(text, i + 1))}: text after the closing ']'", path=p,
                             fix=f"repair the file ({layout})")
    else:
        while i < len(text):
            obj, end = decode(i)
            out.append((line_of(i), obj))
            i = _skip_ws(text, end)
    if not out:
        raise InputError("holds no records (an empty JSON array)", path=p, fix=f"pass the full file ({layout})")
    return out


def _field(p: Path, n: int, rec: Any, name: str, layout: str) -> Any:
    if not isinstance(rec, dict):
        raise InputError(f"line {n}: expected a JSON object, found {type(rec).__name__}", path=p,
                         fix=f"use the {layout}")
    if name not in rec:
        raise InputError(f"line {n}: record lacks field '{name}'", path=p, fix=f"use the {layout}")
    return rec[name]


def _text_field(p: Path, n: int, rec: Any, name: str, layout: str) -> str:
    v = _field(p, n, rec, name, layout)
    if not isinstance(v, str) or not v.strip():
        raise InputError(f"line {n}: field '{name}' must be a non-empty string, found {v!r}", path=p,
                         fix="correct or delete that record")
    return v


def read_klue_nli(path: str | Path) -> TaskData:
    layout = "KLUE-NLI layout: a JSON list of objects with premise, hypothesis, gold_label"
    p = Path(path)
    text, pair, target, lines = [], [], [], []
    for n, rec in read_json_records(p, layout=layout):
        text.append(_text_field(p, n, rec, "premise", layout))
        pair.append(_text_field(p, n, rec, "hypothesis", layout))
        lab = _field(p, n, rec, "gold_label", layout)
        if lab not in NLI_LABELS:
            raise InputError(f"line {n}: gold_label {lab!r} is not one of {', '.join(NLI_LABELS)}", path=p,
                             fix="correct or delete that record")
        target.append(NLI_LABELS.index(lab))
        lines.append(n)
    return TaskData(p, text, target, lines, text_pair=pair)


def read_klue_sts(path: str | Path) -> TaskData:
    layout = "KLUE-STS layout: a JSON list of objects with sentence1, sentence2, labels: {real-label: 0-5}"
    p = Path(path)
    text, pair, target, lines = [], [], [], []
    for n, rec in read_json_records(p, layout=layout):
        text.append(_text_field(p, n, rec, "sentence1", layout))
        pair.append(_text_field(p, n, rec, "sentence2", layout))
        labels = _field(p, n, rec, "labels", layout)
        if not isinstance(labels, dict) or "real-label" not in labels:
            raise InputError(f"line {n}: 'labels' lacks 'real-label'", path=p, fix=f"use the {layout}")
        score = labels["real-label"]
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0.0 <= score <= 5.0:
            raise InputError(f"line {n}: labels.real-label {score!r} is not a number in [0, 5]", path=p,
                             fix="correct or delete that record")
        target.append(float(score))
        lines.append(n)
    return TaskData(p, text, target, lines, text_pair=pair)


# -- KLUE-NER ----------------------------------------------------------------------------------------------------------
def read_klue_ner(path: str | Path) -> TaskData:
    """KLUE-NER TSV. The real files open with comment lines (``## 토큰, 레이블 구분자 : ...``, one of which holds a
    tab), then per sentence a ``## <id><TAB><sentence with <entity:TYPE> marks>`` line and one ``<char><TAB><tag>``
    line per character — a space is a character line too (`` <TAB>O``), so lines are never stripped. The ``##``
    line directly above a sentence's first character line is its header; earlier ``##`` lines are comments. The
    character track is the annotation of record: the inline marks are not re-checked against it (literal ``<``/``>``
    in review text make them disagree in the released files).
    """
    layout = ("KLUE-NER layout: `## <id><TAB><sentence>`, then one `<character><TAB><BIO tag>` line per character, "
              "a blank line between sentences")
    p = Path(path)
    tag_id = {t: i for i, t in enumerate(NER_TAGS)}
    texts, targets, lines, ids = [], [], [], []
    header: tuple[int, str] | None = None  # (line, id) of the latest `##` line
    chars: list[str] = []
    tags: list[int] = []

    def close() -> None:
        nonlocal header
        if chars:
            assert header is not None
            texts.append("".join(chars))
            targets.append(list(tags))
            lines.append(header[0])
            ids.append(header[1])
        header = None  # a blank line ends the sentence, or a comment block
        chars.clear()
        tags.clear()

    for n, line in enumerate(_lines(read_text(p, layout=layout)), 1):
        if line.strip("\t") == "":  # sentence separator (some copies leave a lone tab on it)
            close()
            continue
        if line.startswith("##"):
            if chars:  # a header right after a sentence with no blank line: the sentence ended
                close()
            body = line[2:].strip()
            header = (n, body.split("\t", 1)[0].split(" ", 1)[0])
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise InputError(f"line {n}: expected `<character><TAB><tag>`, found {len(fields)} field(s) {line[:40]!r}",
                             path=p, fix="every character line needs exactly one character and one BIO tag")
        char, tag = fields[0], fields[1].strip()
        if len(char) != 1:
            raise InputError(f"line {n}: expected one character before the tab, found {char!r}", path=p,
                             fix="put one character per line (a space is the line ` <TAB>O`)")
        if tag not in tag_id:
            raise InputError(f"line {n}: tag {tag!r} is not one of {' '.join(NER_TAGS)}", path=p,
                             fix="correct the tag (KLUE-NER types: PS LC OG DT TI QT, BIO scheme)")
        if header is None:
            raise InputError(f"line {n}: character line outside a sentence (no `## <id><TAB><sentence>` line above)",
                             path=p, fix=f"use the {layout}")
        chars.append(char)
        tags.append(tag_id[tag])
    close()
    if not texts:
        raise InputError("holds no sentences", path=p, fix=f"pass the full file ({layout})")
    return TaskData(p, texts, targets, lines, ids=ids)
