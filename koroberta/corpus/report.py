"""A small corpus report: ``report.md`` (counts, drop reasons, length percentiles) and two length histograms."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence


def _pct(values: Sequence[int], q: float) -> int:
    if not values:
        return 0
    s = sorted(values)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


def _hist(values: Sequence[int], path: Path, title: str, xlabel: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    if values:
        hi = max(1, _pct(values, 0.99))
        ax.hist([min(v, hi) for v in values], bins=50, color="#4477aa")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    fig.tight_layout()
    # no Software/date metadata: the same corpus gives a byte-identical PNG
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def write_report(out: Path, stats: dict[str, Any], doc_lens: Sequence[int], sent_lens: Sequence[int]) -> None:
    """Write ``report.md``, ``doc_chars.png`` and ``sentence_chars.png`` into ``out``."""
    _hist(doc_lens, out / "doc_chars.png", "document length (clipped at p99)", "characters per document")
    _hist(sent_lens, out / "sentence_chars.png", "sentence length (clipped at p99)", "characters per sentence")
    lines = ["# Corpus report", "", f"kss backend: `{stats.get('backend')}`", "",
             "| split | documents | sentences | characters |", "|---|---:|---:|---:|"]
    for s in ("train", "valid", "test"):
        lines.append(f"| {s} | {stats['documents'][s]:,} | {stats['sentences'][s]:,} | {stats['characters'][s]:,} |")
    lines += ["", "| length | p10 | p50 | p90 | p99 | max |", "|---|---:|---:|---:|---:|---:|"]
    for name, v in (("document (chars)", doc_lens), ("sentence (chars)", sent_lens)):
        lines.append(f"| {name} | {_pct(v, .1)} | {_pct(v, .5)} | {_pct(v, .9)} | {_pct(v, .99)} | {max(v, default=0)} |")
    lines += ["", "Dropped pages/documents:", ""]
    lines += [f"- {k}: {v:,}" for k, v in sorted(stats.get("dropped", {}).items())] or ["- none"]
    lines += ["", "![document lengths](doc_chars.png)", "![sentence lengths](sentence_chars.png)", ""]
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")
