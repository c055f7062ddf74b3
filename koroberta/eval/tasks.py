"""The benchmark tasks: how each reads its files, encodes them for the model, and is scored.

KLUE-NER labels characters, the model labels SentencePiece pieces; the fast tokenizer's ``offset_mapping`` joins
them. Training: a piece takes the tag of its first non-space character (the ``▁`` of a word-initial piece maps to the
space before the word), pieces with no such character are ignored. Prediction: the characters of a piece take its
tag — the first non-space one the tag itself, the later ones its ``I-`` continuation — and a space inside the piece's
span is ``I-X`` only when the piece continues an entity ``X``; characters no piece covers (truncated) are ``O``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from koroberta.eval import metrics as M
from koroberta.eval import readers as R
from koroberta.eval.config import TASKS, EvalConfig
from koroberta.eval.loop import IGNORE


@dataclass(frozen=True)
class Task:
    name: str
    title: str       # heading in the model card
    kind: str        # classification | regression | tokens
    read: Callable[[Path, EvalConfig], R.TaskData]
    labels: Callable[[EvalConfig], list[str]]
    main_metric: str

    @property
    def layout(self) -> str:
        return TASKS[self.name]


def _nsmc(p: Path, cfg: EvalConfig) -> R.TaskData:
    # the nsmc task has no --labels (NSMC's are 0/1): the tsv task reads the same layout with any label names
    return R.read_single_tsv(p, "document", "label", ["0", "1"], layout=TASKS["nsmc"],
                             column_fix="use the NSMC header line `id<TAB>document<TAB>label`",
                             label_fix=lambda found: f"NSMC labels are 0/1: correct or delete that line; for other "
                                                     f"label names use the tsv task: {cfg.tsv_task_hint(found)}")


def _tsv(p: Path, cfg: EvalConfig) -> R.TaskData:
    return R.read_single_tsv(p, cfg.text_column, cfg.label_column, cfg.labels,
                             layout="TSV with a header line and one row per line",
                             column_fix=f"add a header with '{cfg.text_column}' and '{cfg.label_column}' or pass "
                                        "--text-column/--label-column")


TASK_SPECS: dict[str, Task] = {t.name: t for t in (
    Task("nsmc", "NSMC (movie review sentiment)", "classification", _nsmc, lambda c: ["0", "1"], "accuracy"),
    Task("tsv", "sentence classification (TSV)", "classification", _tsv, lambda c: list(c.labels), "accuracy"),
    Task("klue-nli", "KLUE-NLI", "classification", lambda p, c: R.read_klue_nli(p), lambda c: list(R.NLI_LABELS),
         "accuracy"),
    Task("kornli", "KorNLI", "classification", lambda p, c: R.read_kornli_tsv(p), lambda c: list(R.NLI_LABELS),
         "accuracy"),
    Task("klue-sts", "KLUE-STS", "regression", lambda p, c: R.read_klue_sts(p), lambda c: [], "pearson"),
    Task("klue-ner", "KLUE-NER", "tokens", lambda p, c: R.read_klue_ner(p), lambda c: list(R.NER_TAGS),
         "entity_f1"),
)}


@dataclass
class Encoded:
    ids: list[list[int]]
    targets: list[Any]
    offsets: list[list[tuple[int, int]]] | None = None  # tokens only


def encode(task: Task, tok, data: R.TaskData, max_length: int) -> Encoded:
    if task.kind != "tokens":
        if data.text_pair is not None:
            enc = tok(data.text, data.text_pair, truncation="longest_first", max_length=max_length)
        else:
            enc = tok(data.text, truncation=True, max_length=max_length)
        return Encoded(enc["input_ids"], list(data.target))
    enc = tok(data.text, truncation=True, max_length=max_length, return_offsets_mapping=True)
    offsets = [[tuple(o) for o in offs] for offs in enc["offset_mapping"]]
    targets = [piece_labels(text, tags, offs) for text, tags, offs in zip(data.text, data.target, offsets)]
    return Encoded(enc["input_ids"], targets, offsets)


def _first_char(text: str, start: int, end: int) -> int | None:
    for c in range(start, min(end, len(text))):
        if not text[c].isspace():
            return c
    return None


def _labelled(text: str, offsets: list[tuple[int, int]]) -> list[int | None]:
    """Per piece, the character whose tag it carries: its first non-space character, unless an earlier piece's
    span already reached that character (``None``: specials, a lone "▁", the 2nd piece over one character)."""
    out: list[int | None] = []
    done = -1
    for s, e in offsets:
        c = _first_char(text, s, e) if e > s else None
        out.append(c if c is not None and c > done else None)
        if c is not None:
            done = max(done, e - 1)
    return out


def piece_labels(text: str, tags: list[int], offsets: list[tuple[int, int]]) -> list[int]:
    """One training label per piece: the tag of the character it carries (see :func:`_labelled`), else ``IGNORE``."""
    return [IGNORE if c is None else tags[c] for c in _labelled(text, offsets)]


def char_tags(text: str, piece_tags: list[str], offsets: list[tuple[int, int]]) -> list[str]:
    """Character tags from predicted piece tags (see the module docstring). Pieces that :func:`piece_labels`
    leaves unlabelled (their first character came with an earlier piece) only continue the tag before them."""
    out = ["O"] * len(text)
    assigned = [False] * len(text)
    for tag, (s, e), c in zip(piece_tags, offsets, _labelled(text, offsets)):
        kind = tag[2:] if c is not None and tag != "O" else ""
        for k in range(s, min(e, len(text))):
            if assigned[k]:
                continue
            if c is None:
                if text[k].isspace():
                    continue  # decided by the next character, below
                prev = out[k - 1] if k > 0 else "O"
                out[k] = f"I-{prev[2:]}" if prev != "O" else "O"
            elif k < c:  # the space before the piece's first character ("▁" of a word-initial piece)
                out[k] = tag if tag.startswith("I-") else "O"
            elif k == c:
                out[k] = tag
            else:
                out[k] = f"I-{kind}" if kind else "O"
            assigned[k] = True
    # a space no piece spans (tokenizers differ on whether "▁" owns it) continues an entity only when the next
    # character does
    nxt = "O"
    for k in range(len(text) - 1, -1, -1):
        if not text[k].isspace():
            nxt = out[k]
        elif not assigned[k]:
            out[k] = nxt if nxt.startswith("I-") else "O"
    return out


def score(task: Task, data: R.TaskData, enc: Encoded, pred: list[Any], labels: list[str]) -> dict[str, Any]:
    if task.kind == "classification":
        return M.classification(pred, data.target, len(labels))
    if task.kind == "regression":
        return M.regression(pred, data.target)
    gold = [[labels[t] for t in tags] for tags in data.target]
    assert enc.offsets is not None
    guess = [char_tags(text, [labels[p] for p in pp], offs) for text, pp, offs in zip(data.text, pred, enc.offsets)]
    return M.token_classification(guess, gold)
