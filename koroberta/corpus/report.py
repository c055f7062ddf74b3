"""A small corpus report: ``report.md`` (counts, drop reasons, length percentiles) and two length histograms."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from koroberta.artifacts import SPLITS


def _pct(ordered: Sequence[int], q: float) -> int:
    """Percentile ``q`` of an already sorted sequence (nearest rank)."""
    if not ordered:
        return 0
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def _hist(values: Sequence[int], path: Path, title: str, xlabel: str) -> None:
    """Histogram of ``values`` (sorted), clipped at their p99."""
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
    doc_lens, sent_lens = sorted(doc_lens), sorted(sent_lens)  # once: every percentile below reads them
    _hist(doc_lens, out / "doc_chars.png", "document length (clipped at p99)", "characters per document")
    _hist(sent_lens, out / "sentence_chars.png", "sentence length (clipped at p99)", "characters per sentence")
    lines = ["# Corpus report", "", f"kss backend: `{stats.get('backend')}`", "",
             "| split | documents | sentences | characters |", "|---|---:|---:|---:|"]
    for s in SPLITS:
        lines.append(f"| {s} | {stats['documents'][s]:,} | {stats['sentences'][s]:,} | {stats['characters'][s]:,} |")
    lines += ["", "| length | p10 | p50 | p90 | p99 | max |", "|---|---:|---:|---:|---:|---:|"]
    for name, v in (("document (chars)", doc_lens), ("sentence (chars)", sent_lens)):
        lines.append(f"| {name} | {_pct(v, .1)} | {_pct(v, .5)} | {_pct(v, .9)} | {_pct(v, .99)} | {v[-1] if v else 0} |")
    lines += ["", "Dropped pages/documents:", ""]
    lines += [f"- {k}: {v:,}" for k, v in sorted(stats.get("dropped", {}).items())] or ["- none"]
    lines += ["", "![document lengths](doc_chars.png)", "![sentence lengths](sentence_chars.png)", ""]
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")
