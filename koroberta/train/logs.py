"""Parse fairseq's ``--log-format json`` output and draw the training report.

fairseq prints one JSON object per log line after ``| train_inner |`` (every ``log_interval`` updates),
``| valid |`` (every validation) and ``| train |`` (end of epoch), numbers as strings. With several validation
subsets (``--valid-subset valid,valid_kowiki,...``: a multi-source corpus) each validation prints one record per
subset: fairseq_cli/train.py ``validate()`` calls ``progress.print(stats, tag=subset)``, and the json progress bar
logs it under the logger name ``subset`` with every key prefixed by ``subset + "_"``
(``| valid_kowiki | {"epoch": 1, "valid_kowiki_loss": "9.8", "valid_kowiki_num_updates": "10", ...}``); only the
first subset carries ``<subset>_best_loss`` (fairseq tracks the best checkpoint on it alone).
``koroberta train`` appends the child's output to ``SAVE_DIR/train.log`` across restarts, so the log covers the
whole run; after a resume the updates between the last checkpoint and the kill are logged twice —
:func:`parse_log` keeps the later entry.
Losses are fairseq's: base 2 (bits per masked token); ``ppl = 2 ** loss``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from koroberta.errors import InputError

LOG_NAME = "train.log"
#: the record kinds; a per-source subset's logger name is valid_<name> (no whitespace, "|", "," in a source name)
_LINE = re.compile(r"\|\s*(train_inner|train|valid(?:_[^\s|,]+)?)\s*\|\s*(\{.*\})\s*$")


def _num(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


@dataclass
class TrainLog:
    """Series keyed by update number. ``inner``: train_inner rows; ``valid``/``epoch``: valid/train rows;
    ``subsets``: the per-source validation subsets' rows, ``{"valid_<name>": {update: row}}`` (``valid`` itself,
    every source mixed, stays in ``valid``)."""

    inner: dict[int, dict[str, float]] = field(default_factory=dict)
    valid: dict[int, dict[str, float]] = field(default_factory=dict)
    epoch: dict[int, dict[str, float]] = field(default_factory=dict)
    subsets: dict[str, dict[int, dict[str, float]]] = field(default_factory=dict)

    @property
    def updates(self) -> int:
        keys = [*self.inner, *self.valid, *self.epoch, *(u for rows in self.subsets.values() for u in rows)]
        return max(keys) if keys else 0

    def series(self, which: str, key: str) -> tuple[list[int], list[float]]:
        """``which``: ``inner``, ``valid``, ``epoch`` or a subset name (``valid_kowiki``)."""
        rows = self.subsets.get(which, {}) if which.startswith("valid_") else getattr(self, which)
        xs = [u for u in sorted(rows) if key in rows[u]]
        return xs, [rows[u][key] for u in xs]

    def subset_losses(self) -> dict[str, dict[str, float | None]]:
        """``{subset: {"final_loss", "best_loss"}}`` for ``valid`` and every per-source subset (bits). The best is
        the lowest logged, as fairseq's ``valid_best_loss`` is for ``valid``; it logs none for the others."""
        out = {}
        for name in ["valid", *sorted(self.subsets)]:
            _, ys = self.series(name, "loss")
            out[name] = {"final_loss": ys[-1] if ys else None, "best_loss": min(ys) if ys else None}
        return out

    def stats(self) -> dict[str, Any]:
        """The manifest stats: updates and first/final losses (bits)."""
        _, tl = self.series("inner", "loss")
        if not tl:
            _, tl = self.series("epoch", "loss")
        _, vl = self.series("valid", "loss")
        out: dict[str, Any] = {"updates": self.updates,
                               "first_train_loss": tl[0] if tl else None,
                               "final_train_loss": tl[-1] if tl else None,
                               "final_valid_loss": vl[-1] if vl else None,
                               "loss_unit": "bits per masked token (log2)"}
        if self.subsets:  # a multi-source corpus only: a single source's stats keep their keys
            out["valid_subsets"] = self.subset_losses()
        return out


def parse_lines(lines) -> TrainLog:
    out = TrainLog()
    for line in lines:
        m = _LINE.search(line)
        if not m:
            continue
        try:
            raw = json.loads(m.group(2))
        except json.JSONDecodeError:
            continue  # a line cut by kill -9
        kind = m.group(1)
        prefix = "" if kind == "train_inner" else kind + "_"  # fairseq's print(stats, tag=kind): "<tag>_<key>"
        row = {}
        for k, v in raw.items():
            x = _num(v)
            if x is not None:
                row[k[len(prefix):] if prefix and k.startswith(prefix) else k] = x
        u = row.get("num_updates")
        if u is None:
            continue
        fixed = {"train_inner": out.inner, "train": out.epoch, "valid": out.valid}
        target = fixed[kind] if kind in fixed else out.subsets.setdefault(kind, {})
        target[int(u)] = row  # a replayed update after resume overwrites the killed run's row
    return out


def progress_line(line: str, max_update: int) -> str | None:
    """One terminal line for a fairseq ``train_inner`` / ``valid`` / ``valid_<name>`` log record (None for
    everything else: the model repr, the config dump and deprecation warnings stay in train.log)."""
    rows = parse_lines([line])
    for kind, table in (("train", rows.inner), ("valid", rows.valid), *rows.subsets.items()):
        for u, r in table.items():
            parts = [f"{kind:5s} update {u:>{len(str(max_update))}}/{max_update}"]
            if "loss" in r:
                parts.append(f"loss {r['loss']:.3f} bits")
            if kind == "train":
                if "lr" in r:
                    parts.append(f"lr {r['lr']:.3g}")
                if "wps" in r:
                    parts.append(f"{r['wps']:,.0f} tokens/s")
                if "loss_scale" in r:
                    parts.append(f"loss scale {r['loss_scale']:g}")
            return "  ".join(parts)
    return None


def parse_log(save_dir: str | Path) -> TrainLog:
    p = Path(save_dir) / LOG_NAME
    if not p.is_file():
        raise InputError(f"no {LOG_NAME} (written by `koroberta train`)", path=save_dir,
                         fix="pass the --save-dir of a `koroberta train` run")
    with open(p, encoding="utf-8", errors="replace") as f:
        return parse_lines(f)


PLOTS = {
    "loss": [("inner", "loss", "train"), ("valid", "loss", "valid")],
    "ppl": [("inner", "ppl", "train"), ("valid", "ppl", "valid")],
    "lr": [("inner", "lr", "lr")],
    "wps": [("inner", "wps", "tokens/s (all workers)")],
    "gnorm": [("inner", "gnorm", "grad norm")],
    "loss_scale": [("inner", "loss_scale", "fp16 loss scale")],  # fp16 runs only: a scale that keeps falling = overflows
}
#: the metrics that also get one curve per validation subset of a multi-source corpus (valid_<name>)
PER_SUBSET = ("loss", "ppl")


def draw_report(tlog: TrainLog, out_dir: str | Path) -> list[Path]:
    """One PNG per metric in ``out_dir``; returns the paths written (metrics without data are skipped)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, curves in PLOTS.items():
        if name in PER_SUBSET:
            curves = curves + [(sub, name, sub) for sub in sorted(tlog.subsets)]
        data = [(label, *tlog.series(which, key)) for which, key, label in curves]
        data = [d for d in data if d[1]]
        if not data:
            continue
        fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
        for label, xs, ys in data:
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, ms=3, label=label)
        ax.set_xlabel("update")
        ax.set_ylabel(name + (" (bits)" if name == "loss" else ""))
        if name == "ppl":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = out_dir / f"{name}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written
