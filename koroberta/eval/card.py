"""The ``## Evaluation`` section of the export's model card (``README.md``), one table per task.

The section and each task's block sit between HTML comment markers, so a rerun replaces that task's table in
place and leaves the rest of the card (and other tasks' tables) byte for byte. The card is rewritten atomically.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from koroberta import __version__
from koroberta.artifacts import atomic_write_text
from koroberta.errors import InputError

BEGIN, END = "<!-- koroberta-eval -->", "<!-- /koroberta-eval -->"
_BLOCK = re.compile(r"<!-- koroberta-eval:(?P<task>[a-z0-9-]+) -->\n.*?<!-- /koroberta-eval:(?P=task) -->\n?", re.S)
_INTRO = ("Fine-tuned from this checkpoint with `koroberta eval`, once per seed; each figure is the mean ± sample "
          "standard deviation over the seeds (×100).")


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.2f}"


def task_block(m: dict[str, Any]) -> str:
    """The markdown block of one task's ``metrics.json``."""
    rows = []
    for split in ("dev", "test"):
        for name in m["metrics"] if split in m["summary"] else ():
            s = m["summary"][split][name]
            mean = "n/a" if s["mean"] is None else f"{_pct(s['mean'])} ± {_pct(s['std'])}"
            rows.append(f"| {split} | {name} | {mean} | {', '.join(_pct(v) for v in s['values'])} |")
    data = "; ".join(f"{k} `{d['file']}` ({d['examples']:,} examples, sha256 `{d['sha256']}`)"
                     for k, d in ((k, m["data"][k]) for k in ("train", "dev", "test") if k in m["data"]))
    st = m["settings"]
    settings = (f"epochs {st['epochs']}, batch {st['batch_size']}, lr {st['lr']:g}, warm-up {st['warmup_ratio']:g}, "
                f"weight decay {st['weight_decay']:g}, grad clip {st['grad_clip']:g}, max length {st['max_length']}"
                + (f", train rows ≤ {st['max_train_rows']}" if st["max_train_rows"] else "")
                + (f", eval rows ≤ {st['max_eval_rows']}" if st["max_eval_rows"] else ""))
    return "\n".join([
        f"<!-- koroberta-eval:{m['task']} -->",
        f"### {m['title']}",
        "",
        "| split | metric | mean ± std | per seed |",
        "|---|---|---|---|",
        *rows,
        "",
        f"- seeds: {', '.join(map(str, m['seeds']))} ({len(m['seeds'])} runs); device {m['device']}, precision "
        f"{m['precision']}; koroberta {__version__}",
        f"- data: {data}; dev: {m['dev_source']}",
        f"- settings: {settings}",
        f"<!-- /koroberta-eval:{m['task']} -->",
        "",
    ])


def update_card(text: str, metrics: dict[str, Any], *, path: Path) -> str:
    """``text`` (a model card) with ``metrics``' task table added or replaced."""
    blocks: dict[str, str] = {}
    if BEGIN in text or END in text:
        a, b = text.find(BEGIN), text.find(END)
        if a < 0 or b < a:
            raise InputError("the koroberta-eval section markers are unbalanced", path=path,
                             fix=f"delete the lines from '{BEGIN}' to '{END}' and rerun")
        section = text[a:b]
        blocks = {mt.group("task"): mt.group(0).rstrip("\n") + "\n" for mt in _BLOCK.finditer(section)}
        head, tail = text[:a], text[b + len(END):].lstrip("\n")
    else:
        head, tail = (text.rstrip("\n") + "\n\n" if text.strip() else text), ""
    blocks[metrics["task"]] = task_block(metrics)
    section = "\n".join([BEGIN, "## Evaluation", "", _INTRO, "", *(blocks[k] for k in sorted(blocks)), END])
    return head + section + "\n" + (("\n" + tail) if tail else "")


def write_model_card(model_dir: Path, metrics: dict[str, Any]) -> Path:
    card = Path(model_dir) / "README.md"
    text = card.read_text(encoding="utf-8") if card.is_file() else f"# {Path(model_dir).resolve().name}\n"
    atomic_write_text(card, update_card(text, metrics, path=card))
    return card
