"""Read NSMC-format / generic TSV files with ``datasets`` and validate them line by line."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from koroberta.errors import InputError
from koroberta.finetune.config import FinetuneConfig


@dataclass(frozen=True)
class Rows:
    texts: list[str]
    labels: list[int]  # class ids (index into cfg.labels)


def read_tsv(path: str | Path, cfg: FinetuneConfig, cache_dir: Path) -> Rows:
    """Rows of ``path``; errors name the file, the line and the fix.

    NSMC text contains bare double quotes (``"재밌다"고``), so CSV quoting is off; empty documents (NSMC has a few)
    are kept as empty strings rather than NaN.
    """
    import datasets
    from datasets import Features, Value, load_dataset

    datasets.disable_progress_bars()

    p = Path(path)
    if not p.is_file():
        raise InputError("TSV not found", path=p, fix="pass an NSMC-format file (id<TAB>document<TAB>label with a header)")
    with open(p, encoding="utf-8", errors="replace") as f:
        header = f.readline().rstrip("\r\n").split("\t")
    missing = [c for c in (cfg.text_column, cfg.label_column) if c not in header]
    if missing:
        raise InputError(f"line 1: header {header[:6]} lacks column(s) {', '.join(missing)}", path=p,
                         fix=f"add a header with '{cfg.text_column}' and '{cfg.label_column}' or pass "
                             "--text-column/--label-column")
    try:
        ds = load_dataset("csv", data_files=str(p), delimiter="\t", quoting=csv.QUOTE_NONE,
                          features=Features({c: Value("string") for c in header}), keep_default_na=False,
                          na_filter=False, skip_blank_lines=False, cache_dir=str(cache_dir), split="train")
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 ({e.reason})", path=p, fix="re-save the file as UTF-8") from None
    except Exception as e:  # pandas ParserError wrapped by datasets (wrong field count on some line)
        msg = " ".join(str(e).split())[:200]
        raise InputError(f"malformed TSV ({msg})", path=p,
                         fix="every line needs the header's number of tab-separated fields") from None
    label_id = {lab: i for i, lab in enumerate(cfg.labels)}
    texts, labels = ds[cfg.text_column], ds[cfg.label_column]
    out_labels = []
    for n, lab in enumerate(labels):
        lab = (lab or "").strip()
        if lab not in label_id:
            raise InputError(f"line {n + 2}: label {lab!r} is not in the label set {cfg.labels}", path=p,
                             fix="fix or drop that line, or pass --labels with the full label set")
        out_labels.append(label_id[lab])
    if not out_labels:
        raise InputError("TSV has a header but no rows", path=p, fix="pass a file with data rows")
    return Rows(texts=[t or "" for t in texts], labels=out_labels)
