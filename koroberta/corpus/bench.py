"""Measure kss backends on real text: sentences/s and characters/s on one core, and boundary agreement.

Agreement is the F1 of sentence-boundary positions (offsets counted in non-space characters, so whitespace
differences do not count) against a reference backend (``pecab`` when measured: morpheme-based, kss's most
accurate installed backend here; else the first one).
"""

from __future__ import annotations

import time
from pathlib import Path

from koroberta.errors import KorobertaError


def _boundaries(paras: list[list[str]]) -> set[tuple[int, int]]:
    out = set()
    for i, sents in enumerate(paras):
        pos = 0
        for s in sents[:-1]:
            pos += len("".join(s.split()))
            out.add((i, pos))
    return out


def sample_paragraphs(text: str | Path, max_chars: int) -> tuple[list[str], int]:
    """The non-blank lines of ``text`` from its start until they hold ``max_chars`` characters, and how many they
    hold. Read line by line and stopped there: the file (e.g. a full ``train.txt``, tens of GB) is never read
    whole. Lines as ``read_text().splitlines()`` gave them: universal newlines, then splitlines' other separators
    (U+2028, form feed, ...) within each."""
    paras, n = [], 0
    with open(text, encoding="utf-8") as f:
        for raw in f:
            for line in raw.splitlines():
                if line.strip():
                    paras.append(line)
                    n += len(line)
                    if n >= max_chars:
                        return paras, n
    return paras, n


def compare_backends(text: str | Path, backends: list[str], *, max_chars: int = 200_000,
                     reference: str = "pecab") -> list[dict]:
    """Split the first ``max_chars`` characters of ``text`` (one paragraph per line) with each backend; print and
    return rows ``{backend, seconds, sentences, sent_per_s, chars_per_s, agreement_f1}``."""
    from koroberta.corpus.steps import init_kss, check_backend, split_lines  # noqa: F401

    init_kss()
    import kss  # noqa: F401

    paras, n = sample_paragraphs(text, max_chars)
    results: dict[str, list[list[str]]] = {}
    rows = []
    for b in backends:
        try:
            check_backend(b)
        except KorobertaError as e:
            print(f"{b}: skipped ({e})")
            continue
        split_lines(paras[:2], b)  # warm-up: loads dictionaries / models
        t, c = time.perf_counter(), time.process_time()
        res = [split_lines([p], b) for p in paras]
        # rates per CPU-second of this process: on a shared machine wall time also counts other jobs' slices
        dt, cpu = time.perf_counter() - t, time.process_time() - c
        results[b] = res
        ns = sum(len(r) for r in res)
        rows.append({"backend": b, "seconds": round(dt, 2), "cpu_seconds": round(cpu, 2), "sentences": ns,
                     "sent_per_s": round(ns / cpu, 1), "chars_per_s": round(n / cpu)})
    ref = reference if reference in results else (next(iter(results)) if results else None)
    for row in rows:
        if ref is None:
            continue
        a, r = _boundaries(results[row["backend"]]), _boundaries(results[ref])
        tp = len(a & r)
        f1 = 2 * tp / (len(a) + len(r)) if (a or r) else 1.0
        row["agreement_f1"] = round(f1, 4)
    print(f"{n:,} characters, {len(paras):,} paragraphs; agreement = boundary F1 vs {ref}")
    print("| backend | sentences | wall s | CPU s | sentences/CPU-s | chars/CPU-s | agreement F1 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['backend']} | {r['sentences']:,} | {r['seconds']} | {r['cpu_seconds']} | {r['sent_per_s']:,} "
              f"| {r['chars_per_s']:,} | {r.get('agreement_f1', '')} |")
    return rows
