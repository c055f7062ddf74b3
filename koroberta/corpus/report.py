"""A small corpus report: ``report.md`` (counts, drop reasons, length percentiles) and two length histograms."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from koroberta.artifacts import SPLITS


def percentile(ordered: Sequence[int], q: float) -> int:
    """Percentile ``q`` of an already sorted sequence (nearest rank)."""
    if not ordered:
        return 0
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def histogram(values: Sequence[int], path: Path, title: str, xlabel: str) -> None:
    """Histogram of ``values`` (sorted), clipped at their p99."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    if values:
        hi = max(1, percentile(values, 0.99))
        ax.hist([min(v, hi) for v in values], bins=50, color="#4477aa")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    fig.tight_layout()
    # no Software/date metadata: the same corpus gives a byte-identical PNG
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def source_table(split_sources: dict[str, Any], clean_sources: dict[str, Any] | None) -> list[str]:
    """The per-source lines of ``report.md`` for a multi-source corpus: what each source brought in, what its
    filters, the dedup and the decontamination removed, what it contributes to each split and how many train
    documents its weight wrote. ``split_sources``: the split's ``stats["sources"]``; ``clean_sources``: the clean
    step's (None for a corpus whose clean step predates them)."""
    lines = ["", "## Sources", "",
             "| source | profile | documents in | kept | filtered | duplicates | near-duplicates | decontaminated "
             "| PII replaced | train | valid | test | weight | train written |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, sp in split_sources.items():
        cs = (clean_sources or {}).get(name, {})
        dropped = cs.get("dropped", {})
        dedup = ("duplicate", "near_duplicate", "decontaminated")
        filtered = sum(v for k, v in dropped.items() if k not in dedup)
        kept = cs.get("kept", {}).get("documents")
        # in = kept + every drop (cleaning, the profile's filters, dedup, decontamination): the table adds up
        docs_in = kept + sum(dropped.values()) if isinstance(kept, int) else None
        cell = (lambda v: f"{v:,}" if isinstance(v, int) else "–")  # noqa: E731
        lines.append(f"| {name} | {cs.get('profile') or '–'} | {cell(docs_in)} | {cell(kept)} "
                     f"| {cell(filtered if cs else None)} | {cell(dropped.get('duplicate', 0) if cs else None)} "
                     f"| {cell(dropped.get('near_duplicate', 0) if cs else None)} "
                     f"| {cell(cs.get('decontaminated'))} | {cell(cs.get('pii_replaced'))} | "
                     + " | ".join(f"{sp['documents'][s]:,}" for s in SPLITS)
                     + f" | {sp['weight']:g} | {sp['train_written']:,} |")
    by_reason: dict[str, dict[str, int]] = {}
    for name, cs in (clean_sources or {}).items():
        for reason, n in cs.get("dropped", {}).items():
            by_reason.setdefault(reason, {})[name] = n
    if by_reason:
        lines += ["", "Dropped by reason and source (each source's `excluded.jsonl` lists the documents):", "",
                  "| reason | " + " | ".join(split_sources) + " |", "|---|" + "---:|" * len(split_sources)]
        for reason in sorted(by_reason):
            lines.append(f"| {reason} | " + " | ".join(f"{by_reason[reason].get(n, 0):,}" for n in split_sources)
                         + " |")
    return lines


def write_report(out: Path, stats: dict[str, Any], doc_lens: Sequence[int], sent_lens: Sequence[int], *,
                 clean_sources: dict[str, Any] | None = None) -> None:
    """Write ``report.md``, ``doc_chars.png`` and ``sentence_chars.png`` into ``out`` (a multi-source corpus's
    ``stats["sources"]`` adds the per-source table; ``clean_sources`` is the clean step's per-source stats)."""
    doc_lens, sent_lens = sorted(doc_lens), sorted(sent_lens)  # once: every percentile below reads them
    histogram(doc_lens, out / "doc_chars.png", "document length (clipped at p99)", "characters per document")
    histogram(sent_lens, out / "sentence_chars.png", "sentence length (clipped at p99)", "characters per sentence")
    lines = ["# Corpus report", "", f"kss backend: `{stats.get('backend')}`", "",
             "| split | documents | sentences | characters |", "|---|---:|---:|---:|"]
    for s in SPLITS:
        lines.append(f"| {s} | {stats['documents'][s]:,} | {stats['sentences'][s]:,} | {stats['characters'][s]:,} |")
    lines += ["", "| length | p10 | p50 | p90 | p99 | max |", "|---|---:|---:|---:|---:|---:|"]
    for name, v in (("document (chars)", doc_lens), ("sentence (chars)", sent_lens)):
        lines.append(f"| {name} | {percentile(v, .1)} | {percentile(v, .5)} | {percentile(v, .9)} | {percentile(v, .99)} | {v[-1] if v else 0} |")
    lines += ["", "Dropped pages/documents:", ""]
    lines += [f"- {k}: {v:,}" for k, v in sorted(stats.get("dropped", {}).items())] or ["- none"]
    if stats.get("sources"):
        lines += source_table(stats["sources"], clean_sources)
    lines += ["", "![document lengths](doc_chars.png)", "![sentence lengths](sentence_chars.png)", ""]
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")
