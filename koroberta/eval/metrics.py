"""Task metrics, computed by scikit-learn / scipy, defined the way the benchmarks define them.

* classification: accuracy; F1 of class 1 for two classes (NSMC convention), macro-F1 otherwise;
* KLUE-STS: Pearson r (KLUE's main figure), Spearman rho, and F1 after binarising gold and prediction at 3.0;
* KLUE-NER: entity-level macro F1 (exact span and type, BIO strict — KLUE uses seqeval ``mode="strict"``,
  ``average="macro"``) and character-level macro F1 over the non-O tags (KLUE: ``zero_division=1``).

Entity F1 without seqeval: each span found in gold or prediction becomes one sample whose true/predicted class is the
entity type there (``O`` when that side has no entity with exactly those bounds); sklearn's per-type F1 on those
samples counts TP/FP/FN exactly as strict span matching does.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Sequence


def _r(x: float) -> float | None:
    return None if x is None or math.isnan(x) else round(float(x), 6)


def classification(pred: Sequence[int], gold: Sequence[int], n_labels: int) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, f1_score

    acc = accuracy_score(gold, pred)
    if n_labels == 2:
        f1 = f1_score(gold, pred, labels=[0, 1], pos_label=1, average="binary", zero_division=0)
        return {"accuracy": _r(acc), "f1": _r(f1), "f1_average": "binary (label index 1)"}
    f1 = f1_score(gold, pred, labels=list(range(n_labels)), average="macro", zero_division=0)
    return {"accuracy": _r(acc), "f1": _r(f1), "f1_average": "macro"}


def regression(pred: Sequence[float], gold: Sequence[float], threshold: float = 3.0) -> dict[str, Any]:
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import f1_score

    with warnings.catch_warnings():  # constant predictions: r is undefined (NaN -> reported as null)
        warnings.simplefilter("ignore")
        pearson = float(pearsonr(pred, gold)[0]) if len(gold) >= 2 else float("nan")
        spearman = float(spearmanr(pred, gold)[0]) if len(gold) >= 2 else float("nan")
    f1 = f1_score([int(g >= threshold) for g in gold], [int(p >= threshold) for p in pred], labels=[0, 1],
                  average="binary", zero_division=0)
    return {"pearson": _r(pearson), "spearman": _r(spearman), "f1": _r(f1), "f1_threshold": threshold}


def bio_spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """``(start, end, type)`` entities of a strict BIO sequence: an entity opens at ``B-X`` and extends over the
    following ``I-X``; an ``I-`` that does not continue an open entity of its type belongs to no entity."""
    spans: list[tuple[int, int, str]] = []
    start, kind = -1, ""
    for i, t in enumerate(list(tags) + ["O"]):
        if kind and t == f"I-{kind}":
            continue
        if kind:
            spans.append((start, i, kind))
            start, kind = -1, ""
        if t.startswith("B-"):
            start, kind = i, t[2:]
    return spans


def token_classification(pred: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> dict[str, Any]:
    """KLUE-NER metrics over sentences of character tags (``pred[i]`` and ``gold[i]`` have equal lengths)."""
    from sklearn.metrics import f1_score

    y_true_e: list[str] = []
    y_pred_e: list[str] = []
    for s, (p, g) in enumerate(zip(pred, gold)):
        gs = {(a, b): k for a, b, k in bio_spans(g)}
        ps = {(a, b): k for a, b, k in bio_spans(p)}
        for key in sorted(set(gs) | set(ps)):
            y_true_e.append(gs.get(key, "O"))
            y_pred_e.append(ps.get(key, "O"))
    types = sorted((set(y_true_e) | set(y_pred_e)) - {"O"})
    if types:
        ent_macro = f1_score(y_true_e, y_pred_e, labels=types, average="macro", zero_division=0)
        ent_micro = f1_score(y_true_e, y_pred_e, labels=types, average="micro", zero_division=0)
    else:  # no entity on either side: F1 is undefined
        ent_macro = ent_micro = float("nan")
    flat_true = [t for g in gold for t in g]
    flat_pred = [t for p in pred for t in p]
    from koroberta.eval.readers import NER_TAGS

    non_o = [t for t in NER_TAGS if t != "O"]
    char = f1_score(flat_true, flat_pred, labels=non_o, average="macro", zero_division=1)
    return {"entity_f1": _r(ent_macro), "entity_f1_micro": _r(ent_micro), "char_f1": _r(char),
            "entity_f1_average": "macro over types, exact spans (strict BIO)",
            "char_f1_average": "macro over the 12 non-O tags, zero_division=1 (KLUE)"}


def summarize(values: Sequence[float | None]) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof=1; 0 for one run) over seeds; null when any run is undefined."""
    import numpy as np

    vals = list(values)
    if not vals or any(v is None for v in vals):
        return {"mean": None, "std": None, "values": vals}
    arr = np.asarray(vals, dtype=np.float64)
    std = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
    return {"mean": _r(float(arr.mean())), "std": _r(std), "values": vals}
