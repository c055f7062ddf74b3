"""A small corpus report: ``report.md`` (counts, drop reasons, length percentiles) and two length histograms.

The lengths are collected as they stream by (:class:`LengthStats`: fixed-size bucket counts, not one value per
document or sentence), so the report's memory does not grow with the corpus."""

from __future__ import annotations

import sys
from array import array
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from koroberta.artifacts import SPLITS


def rank(n: int, q: float) -> int:
    """The 0-based rank of percentile ``q`` among ``n`` sorted values (nearest rank): the one definition that
    :func:`percentile` and :meth:`LengthStats.percentile` share, so the streamed report says what the sorted list
    said."""
    return min(n - 1, int(q * (n - 1) + 0.5))


def percentile(ordered: Sequence[int], q: float) -> int:
    """Percentile ``q`` of an already sorted sequence (nearest rank)."""
    if not ordered:
        return 0
    return ordered[rank(len(ordered), q)]


class LengthStats:
    """Non-negative integer lengths, counted as they come in a fixed number of buckets (numpy int64 counts; memory
    independent of how many values are added): every value below ``2**exact_bits`` has its own bucket (exact);
    above, each power-of-two octave has ``2**(mantissa_bits - 1)`` equal buckets, so a value is known to within
    ``2**(1 - mantissa_bits)`` of itself. Count, min and max are always exact.

    Defaults: exact below 65,536 characters (every sentence and nearly every document: in bench/corpus_stage.py's
    kowiki + reviews corpus p99 is 6,350 characters, max 166,808), and above it to within 0.1 % (2**-10);
    113,664 buckets, 888 KiB. The values
    are first gathered in a small ``array('q')`` (8 bytes each, ``buffer`` of them at most) and binned by numpy in
    one call per ``buffer``: a numpy call per document would cost more than the split's own writing."""

    def __init__(self, *, exact_bits: int = 16, mantissa_bits: int = 11, buffer: int = 1 << 16) -> None:
        if not 1 <= mantissa_bits <= exact_bits + 1 <= 63:
            # an octave above the exact range must hold at least one integer per bucket: 2**exact_bits is its width
            raise ValueError(f"need 1 <= mantissa_bits <= exact_bits + 1 <= 63, got {mantissa_bits}, {exact_bits}")
        self.exact_bits, self.mantissa_bits, self._cap = exact_bits, mantissa_bits, buffer
        self._half = 1 << (mantissa_bits - 1)  # buckets per octave above the exact range
        # octaves of bit lengths exact_bits + 1 .. 63 (the largest int64)
        self._counts = np.zeros((1 << exact_bits) + (63 - exact_bits) * self._half, dtype=np.int64)
        self._count = self._min = self._max = 0  # of the values binned so far: read through the properties
        self._buf = array("q")

    def add(self, value: int) -> None:
        self._buf.append(value)
        if len(self._buf) >= self._cap:
            self._flush()

    def extend(self, values: Iterable[int]) -> None:
        self._buf.extend(values)
        if len(self._buf) >= self._cap:
            self._flush()

    # count/min/max bin the buffer first: values still in it are counted (a small corpus may never fill it)
    @property
    def count(self) -> int:
        self._flush()
        return self._count

    @property
    def min(self) -> int:
        self._flush()
        return self._min

    @property
    def max(self) -> int:
        self._flush()
        return self._max

    @property
    def nbytes(self) -> int:
        """Bytes held: the bucket counts plus the buffer's allocation (bounded by ``buffer`` values)."""
        return self._counts.nbytes + sys.getsizeof(self._buf)  # an array's size includes its allocation

    def _flush(self) -> None:
        if not self._buf:
            return
        v = np.frombuffer(self._buf, dtype=np.int64).copy()  # a copy: the array cannot be cleared while viewed
        del self._buf[:]
        lo, hi = int(v.min()), int(v.max())
        if lo < 0:
            raise ValueError(f"lengths are non-negative, got {lo}")
        self._min, self._max = (lo, hi) if not self._count else (min(self._min, lo), max(self._max, hi))
        self._count += len(v)
        self._counts += np.bincount(self._index(v), minlength=len(self._counts))

    def _index(self, v: np.ndarray) -> np.ndarray:
        idx = v.copy()
        big = v >= (1 << self.exact_bits)
        if big.any():
            b = v[big]
            # bit length: frexp's exponent, less one where the float rounded up to the next power of two
            e = np.minimum(np.frexp(b.astype(np.float64))[1].astype(np.int64), 63)
            e -= (b >> (e - 1)) == 0
            top = b >> (e - self.mantissa_bits)  # the leading mantissa_bits bits: half .. 2 * half - 1
            idx[big] = (1 << self.exact_bits) + (e - self.exact_bits - 1) * self._half + top - self._half
        return idx

    def _lower(self, idx: np.ndarray) -> np.ndarray:
        """Each bucket's smallest value (the value itself in the exact range)."""
        idx = np.asarray(idx, dtype=np.int64)
        j = np.maximum(idx - (1 << self.exact_bits), 0)
        e = self.exact_bits + 1 + j // self._half
        return np.where(idx < (1 << self.exact_bits), idx, (self._half + j % self._half) << (e - self.mantissa_bits))

    def percentile(self, q: float) -> int:
        """Percentile ``q`` by :func:`rank`, as :func:`percentile` gives it on the sorted values: the same value
        below ``2**exact_bits``; above, its bucket's smallest value (within ``2**(1 - mantissa_bits)`` below the
        exact one), kept within [min, max]."""
        self._flush()
        if not self.count:
            return 0
        i = int(np.searchsorted(np.cumsum(self._counts), rank(self.count, q), side="right"))
        return min(max(int(self._lower(i)), self.min), self.max)

    def exact(self, value: int) -> bool:
        """Whether ``value`` lies in the exact range (its percentile or histogram bar is the sorted list's own)."""
        return value < (1 << self.exact_bits)

    def buckets(self) -> tuple[np.ndarray, np.ndarray]:
        """(smallest possible value, count) of every non-empty bucket, in increasing order: in the exact range the
        values themselves and how often each occurs. Kept within [min, max], so the first is the exact minimum."""
        self._flush()
        nz = np.flatnonzero(self._counts)
        return np.clip(self._lower(nz), self.min, self.max), self._counts[nz]


def length_stats(values: Iterable[int]) -> LengthStats:
    """A :class:`LengthStats` of ``values``."""
    st = LengthStats()
    st.extend(values)
    return st


def histogram(values: LengthStats | Sequence[int], path: Path, title: str, xlabel: str) -> None:
    """Histogram of ``values`` (a :class:`LengthStats`, or the lengths themselves), clipped at their p99: 50 bins
    from the smallest value to p99, every value above p99 in the last. Drawn from the bucket counts (a weighted
    histogram of one value per bucket): the same bins, counts and PNG bytes as from the list of lengths whenever p99
    is in the exact range."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    st = values if isinstance(values, LengthStats) else length_stats(values)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    if st.count:
        hi = max(1, st.percentile(0.99))
        lows, counts = st.buckets()
        clipped = np.minimum(lows, hi)
        # the bin edges matplotlib would take from the values themselves: linspace over [min, max] of the clipped
        # values, which the buckets share (min and p99 are bucket values in the exact range)
        ax.hist(clipped, bins=np.histogram_bin_edges(clipped, bins=50), weights=counts, color="#4477aa")
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


def write_report(out: Path, stats: dict[str, Any], doc_lens: LengthStats | Sequence[int],
                 sent_lens: LengthStats | Sequence[int], *, clean_sources: dict[str, Any] | None = None) -> None:
    """Write ``report.md``, ``doc_chars.png`` and ``sentence_chars.png`` into ``out`` (a multi-source corpus's
    ``stats["sources"]`` adds the per-source table; ``clean_sources`` is the clean step's per-source stats).
    ``doc_lens``/``sent_lens``: the document and sentence lengths, streamed (:class:`LengthStats`) or listed."""
    docs, sents = (v if isinstance(v, LengthStats) else length_stats(v) for v in (doc_lens, sent_lens))
    histogram(docs, out / "doc_chars.png", "document length (clipped at p99)", "characters per document")
    histogram(sents, out / "sentence_chars.png", "sentence length (clipped at p99)", "characters per sentence")
    lines = ["# Corpus report", "", f"kss backend: `{stats.get('backend')}`", "",
             "| split | documents | sentences | characters |", "|---|---:|---:|---:|"]
    for s in SPLITS:
        lines.append(f"| {s} | {stats['documents'][s]:,} | {stats['sentences'][s]:,} | {stats['characters'][s]:,} |")
    lines += ["", "| length | p10 | p50 | p90 | p99 | max |", "|---|---:|---:|---:|---:|---:|"]
    approx = None
    for name, st in (("document (chars)", docs), ("sentence (chars)", sents)):
        ps = [st.percentile(q) for q in (.1, .5, .9, .99)]
        approx = approx or next((st for p in ps if not st.exact(p)), None)
        lines.append(f"| {name} | " + " | ".join(map(str, ps)) + f" | {st.max} |")
    if approx:
        # said only when it applies: a report whose percentiles are all exact reads as it always did
        lines += ["", f"Percentiles of {1 << approx.exact_bits:,} characters or more are up to "
                  f"{2.0 ** (1 - approx.mantissa_bits):.2%} below the exact value (max is exact); so are the "
                  "histogram's bins above it."]
    lines += ["", "Dropped pages/documents:", ""]
    lines += [f"- {k}: {v:,}" for k, v in sorted(stats.get("dropped", {}).items())] or ["- none"]
    if stats.get("sources"):
        lines += source_table(stats["sources"], clean_sources)
    lines += ["", "![document lengths](doc_chars.png)", "![sentence lengths](sentence_chars.png)", ""]
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")
