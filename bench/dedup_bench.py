"""Measurements behind koroberta.corpus.dedup and koroberta.corpus.decontaminate (issue 22; bench, not a test).

    .venv/bin/python bench/dedup_bench.py --kowiki ../shared/data/kowiki-text/kowiki-extracted-AA.txt.xz \\
        --reviews ../shared/data/nsmc/ratings_train.rebuilt.txt --docs 10000 --out bench/results

Parts (``--parts``, default all; each one is a few minutes on one core, and its numbers are kept as JSON under
``--work`` so that a part can be rerun alone and the report is rendered from every part present):

* ``exact``      (d) exact-duplicate counts on the real data under each normalisation level of the key
* ``shingles``   (c) char 3/4/5-grams vs word 2-grams vs kiwipiepy morpheme 2/3-grams: recall, precision, speed
* ``recall``     (a) near-dedup recall of planted copies at 1/3/5/10/20 % character edits, articles and reviews,
                     with the confirmation threshold swept
* ``precision``  (b) every pair called a near duplicate among >= 10k real unplanted documents, checked by the true
                     Jaccard similarity of the shingle sets
* ``minchars``   where near dedup stops meaning anything on short texts (all reviews, by length)
* ``decon``      (e) decontamination false positives and planted recall for n_words in 6, 8, 10, 13
* ``speed``      (f) throughput (documents/s, one core: process CPU time) and index bytes per document

The report (``--out``/dedup.md) keeps whatever stands above the marker line ``<!-- generated -->`` (the hand-written
reading of the numbers) and regenerates everything below it.
"""

from __future__ import annotations

import argparse
import difflib
import gc
import json
import lzma
import random
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from koroberta.corpus.dedup import (ExactDedup, NearDedup, dedup_key, ngram_hashes,  # noqa: E402
                                    normalize, word_units)
from koroberta.corpus.decontaminate import Decontaminator, load_items  # noqa: E402

PARTS = ("exact", "shingles", "recall", "precision", "minchars", "decon", "speed")
RATES = (0.01, 0.03, 0.05, 0.10, 0.20)
MARKER = "<!-- generated -->"


# -- data --------------------------------------------------------------------------------------------------------------
def load_kowiki(path: Path, limit: int | None) -> list[tuple[str, str]]:
    """``(id, body)`` of WikiExtractor documents in file order: the title line dropped, paragraphs joined by \\n,
    empty documents skipped."""
    out: list[tuple[str, str]] = []
    opener = lzma.open if path.suffix == ".xz" else open
    doc_id, lines, title = None, [], False
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.startswith("<doc "):
                doc_id = line.split('id="', 1)[1].split('"', 1)[0]
                lines, title = [], True
            elif line.startswith("</doc>"):
                body = "\n".join(l for l in lines if l.strip())
                if body:
                    out.append((f"w{doc_id}", body))
                    if limit is not None and len(out) >= limit:
                        break
                doc_id = None
            elif doc_id is not None:
                if title:  # WikiExtractor repeats the title as the first line
                    title = False
                else:
                    lines.append(line.rstrip("\n"))
    return out


def load_reviews(path: Path) -> list[tuple[str, str, str]]:
    """``(id, document, label)`` of an NSMC-format TSV (header line skipped)."""
    with open(path, encoding="utf-8") as f:
        next(f)
        rows = [line.rstrip("\n").split("\t") for line in f]
    return [(f"r{r[0]}", r[1], r[2]) for r in rows if len(r) == 3]


def mutate(text: str, rate: float, rng: random.Random) -> str:
    """``text`` with ``max(1, round(rate * len))`` random character edits: substitution, insertion or deletion (one
    third each) at uniform positions; new characters drawn from the text's own non-space characters."""
    chars = list(text)
    pool = [c for c in text if not c.isspace()] or chars or ["가"]
    for _ in range(max(1, round(rate * len(text)))):
        op = rng.randrange(3)
        if op == 0 and chars:
            chars[rng.randrange(len(chars))] = rng.choice(pool)
        elif op == 1 or not chars:
            chars.insert(rng.randrange(len(chars) + 1), rng.choice(pool))
        else:
            del chars[rng.randrange(len(chars))]
    return "".join(chars)


def shingle_set(norm: str, kind: str, n: int, morphs=None) -> set:
    """The exact shingle set (strings / tuples), for true Jaccard similarity."""
    if kind == "char":
        return {norm[i:i + n] for i in range(len(norm) - n + 1)}
    units = norm.split(" ") if kind == "word" else morphs(norm)
    return set(zip(*(units[k:] for k in range(n))))


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def ratio(a: str, b: str) -> float:
    """difflib's similarity ratio of two normalised texts (first 3,000 characters): a judge that does not depend
    on any shingle choice."""
    return difflib.SequenceMatcher(None, a[:3000], b[:3000], autojunk=False).ratio()


def short(s: str, k: int = 90) -> str:
    s = " ".join(s.split()).replace("|", "\\|")
    return s if len(s) <= k else s[:k] + "…"


def pct(x: float) -> str:
    return f"{100 * x:.1f} %"


class Morphs:
    """kiwipiepy morpheme forms of a normalised text, cached (the bench tokenises each text once for all n)."""

    def __init__(self) -> None:
        from kiwipiepy import Kiwi

        self.kiwi = Kiwi()
        self.cache: dict[str, list[str]] = {}
        self.cpu_s = 0.0

    def __call__(self, norm: str) -> list[str]:
        forms = self.cache.get(norm)
        if forms is None:
            t0 = time.process_time()
            forms = [t.form for t in self.kiwi.tokenize(norm)]
            self.cpu_s += time.process_time() - t0
            self.cache[norm] = forms
        return forms


class MorphNearDedup(NearDedup):
    """NearDedup over kiwipiepy morpheme n-grams (bench only: the library does not depend on kiwipiepy)."""

    def __init__(self, morphs: Morphs, **kw) -> None:
        super().__init__(**kw)
        self.morphs = morphs

    def shingle_hashes(self, norm: str):
        return ngram_hashes(word_units(self.morphs(norm)), self.n)


CONFIGS = [("char", 3), ("char", 4), ("char", 5), ("word", 2), ("morph", 2), ("morph", 3)]


def make(kind: str, n: int, morphs: Morphs | None, **kw) -> NearDedup:
    if kind == "morph":
        assert morphs is not None
        return MorphNearDedup(morphs, n=n, **kw)
    return NearDedup(shingle=kind, n=n, **kw)


# -- samples -----------------------------------------------------------------------------------------------------------
class Data:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._wiki: list[tuple[str, str]] | None = None
        self._rev: list[tuple[str, str, str]] | None = None

    @property
    def wiki(self) -> list[tuple[str, str]]:
        if self._wiki is None:
            t0 = time.perf_counter()
            self._wiki = load_kowiki(self.args.kowiki, None)
            print(f"kowiki: {len(self._wiki):,} documents ({time.perf_counter() - t0:.1f} s)", flush=True)
        return self._wiki

    @property
    def reviews(self) -> list[tuple[str, str, str]]:
        if self._rev is None:
            self._rev = load_reviews(self.args.reviews)
        return self._rev

    def sample(self, rows: list, k: int, salt: str) -> list:
        idx = sorted(random.Random(f"{self.args.seed}:{salt}").sample(range(len(rows)), min(k, len(rows))))
        return [rows[i] for i in idx]


# -- (d) exact ---------------------------------------------------------------------------------------------------------
def _key_levels():
    """The exact-dedup key levels compared, each on top of the previous one; the last is the shipped
    :func:`normalize` (``[^\\w\\s]`` runs as a space: punctuation, symbols, marks)."""
    import re
    import unicodedata

    ranges: list[list[int]] = []  # the P* code points as ranges: a class of 819 single characters is ~3x slower
    for c in range(0x20000):  # planes above 1 hold no punctuation
        if unicodedata.category(chr(c))[0] == "P":
            if ranges and ranges[-1][1] == c - 1:
                ranges[-1][1] = c
            else:
                ranges.append([c, c])
    punct = re.compile("[" + "".join(re.escape(chr(a)) + ("" if a == b else "-" + re.escape(chr(b)))
                                     for a, b in ranges) + "]+")

    def nfkc_ws(t: str) -> str:
        return " ".join(unicodedata.normalize("NFKC", t).casefold().split())

    def punct_only(t: str) -> str:
        s = unicodedata.normalize("NFKC", t).casefold()
        out = " ".join(punct.sub(" ", s).split())
        return out if out else " ".join(s.split())

    return [("raw text", lambda t: t), ("NFKC + casefold + whitespace", nfkc_ws),
            ("+ punctuation (P*) as space", punct_only),
            ("+ every non-word character as space: dedup_key", lambda t: normalize.__wrapped__(t))]


def part_exact(data: Data) -> dict:
    res: dict = {}
    for name, rows, has_label in (("reviews", data.reviews, True), ("kowiki", data.wiki, False)):
        levels = []
        prev_groups: dict[int, int] | None = None  # doc index -> index of its group's first doc at previous level
        for lname, fn in _key_levels():
            t0 = time.process_time()
            first: dict[str, int] = {}
            group: dict[int, int] = {}
            for i, row in enumerate(rows):
                k = fn(row[1])
                group[i] = first.setdefault(k, i)
            cpu = time.process_time() - t0
            dups = sum(1 for i, g in group.items() if g != i)
            lev = {"level": lname, "documents": len(rows), "duplicates": dups, "cpu_s": round(cpu, 2)}
            if has_label:
                lev["label_conflicts"] = sum(1 for i, g in group.items() if g != i and rows[i][2] != rows[g][2])
            if prev_groups is not None:
                # documents that join a group only at this level, and examples of them
                new = [i for i in group if group[i] != i and prev_groups[i] != prev_groups[group[i]]]
                lev["newly_merged"] = len(new)
                if has_label:
                    lev["newly_merged_label_conflicts"] = sum(1 for i in new if rows[i][2] != rows[group[i]][2])
                ex = random.Random(f"{data.args.seed}:exact:{name}:{lname}").sample(new, min(8, len(new)))
                lev["examples"] = [[short(rows[group[i]][1], 60), short(rows[i][1], 60)] for i in sorted(ex)]
            levels.append(lev)
            prev_groups = group
        res[name] = levels
        # the most repeated texts under dedup_key
        if has_label:
            counts: dict[str, int] = {}
            text_of: dict[str, str] = {}
            for row in rows:
                k = dedup_key(row[1])
                counts[k] = counts.get(k, 0) + 1
                text_of.setdefault(k, row[1])
            top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
            res[name + "_top"] = [[short(text_of[k], 40), c] for k, c in top]
            res[name + "_in_groups"] = sum(c for c in counts.values() if c > 1)
            res[name + "_groups"] = sum(1 for c in counts.values() if c > 1)
    return res


# -- planted copies ----------------------------------------------------------------------------------------------------
def planted(data: Data, n_articles: int, n_reviews: int, min_chars: int) -> dict[str, list]:
    """Originals (normalised length >= min_chars) and, per rate, one edited copy of each."""
    wiki = [r for r in data.sample(data.wiki, n_articles * 2, "planted-wiki") if len(normalize(r[1])) >= min_chars]
    rev = [r for r in data.reviews if len(normalize(r[1])) >= min_chars]
    rev = data.sample(rev, n_reviews, "planted-rev")
    out: dict[str, list] = {}
    for kind, rows in (("articles", wiki[:n_articles]), ("reviews", rev)):
        items = []
        for i, row in enumerate(rows):
            copies = {r: mutate(row[1], r, random.Random(f"{data.args.seed}:{kind}:{i}:{r}")) for r in RATES}
            items.append((row[0], row[1], copies))
        out[kind] = items
    return out


def recall_run(nd: NearDedup, items: list) -> dict:
    """Insert the originals, then find() each copy: caught (any match) and right (its own original or the document
    its original was found to duplicate)."""
    owner: dict[str, tuple[str, str] | None] = {}
    for doc, text, _ in items:
        hit = nd.match(doc, "orig", text)
        owner[doc] = hit if hit is not None else ("orig", doc)
    out = {}
    for r in RATES:
        caught = right = 0
        for doc, _, copies in items:
            hit = nd.find(copies[r])
            caught += hit is not None
            right += hit is not None and hit == owner[doc]
        out[str(r)] = {"caught": caught, "right": right, "n": len(items)}
    return out


# -- (c) shingle comparison --------------------------------------------------------------------------------------------
def part_shingles(data: Data) -> dict:
    a = data.args
    morphs = Morphs()
    plant = planted(data, a.cmp_articles, a.cmp_reviews, 20)
    wiki = data.sample(data.wiki, a.cmp_unplanted_articles, "cmp-wiki")
    exact = ExactDedup()
    rev = [r for r in data.sample(data.reviews, a.cmp_unplanted_reviews, "cmp-rev")
           if exact.seen(dedup_key(r[1]), r[0], "r") is None]
    res: dict = {"sample": {"planted_articles": len(plant["articles"]), "planted_reviews": len(plant["reviews"]),
                            "unplanted_articles": len(wiki), "unplanted_reviews": len(rev)}, "configs": []}
    for kind, n in CONFIGS:
        print(f"shingles: {kind}{n}", flush=True)
        row: dict = {"shingle": kind, "n": n}
        for name, items in plant.items():
            row["recall_" + name] = recall_run(make(kind, n, morphs, min_chars=20), items)
        # unplanted: every confirmed pair, judged by difflib's ratio (independent of the shingles)
        nd = make(kind, n, morphs, min_chars=20)
        text_of: dict[str, str] = {}
        pairs = []
        speed: dict = {}
        for name, rows in (("articles", wiki), ("reviews", rev)):
            if kind == "morph":
                morphs.cache.clear()
                morphs.cpu_s = 0.0
            t0 = time.process_time()
            for row_ in rows:
                hit = nd.match(row_[0], name, row_[1])
                text_of[row_[0]] = row_[1]
                if hit is not None:
                    pairs.append((hit[1], row_[0]))
            speed[name] = round(len(rows) / (time.process_time() - t0), 1)
            if kind == "morph":
                speed[name + "_kiwi_share"] = round(morphs.cpu_s / (time.process_time() - t0), 3)
        judged = [ratio(normalize(text_of[x]), normalize(text_of[y])) for x, y in pairs]
        row["unplanted_pairs"] = len(pairs)
        row["unplanted_not_edits"] = sum(1 for r in judged if r < 0.8)
        row["unplanted_ratio_median"] = round(statistics.median(judged), 3) if judged else None
        worst = sorted(zip(judged, pairs))[:3]
        row["worst"] = [[round(r, 2), short(text_of[x], 60), short(text_of[y], 60)] for r, (x, y) in worst]
        row["docs_per_s"] = speed
        res["configs"].append(row)
    return res


# -- (a) recall with the defaults --------------------------------------------------------------------------------------
def part_recall(data: Data) -> dict:
    a = data.args
    nd0 = NearDedup()
    plant = planted(data, a.recall_articles, a.recall_reviews, nd0.min_chars)
    res: dict = {"params": {"shingle": nd0.shingle, "n": nd0.n, "bands": nd0.bands, "rows": nd0.rows,
                            "threshold": nd0.threshold, "min_chars": nd0.min_chars}}
    for name, items in plant.items():
        res[name] = recall_run(NearDedup(), items)
        res[name + "_median_chars"] = statistics.median(len(t) for _, t, _ in items)
        # threshold sweep: pairwise from the signatures -- a band in common (LSH candidate) and estimated Jaccard
        nd = NearDedup()
        sweep: dict = {}
        for r in RATES:
            cand_est = []
            true_j = []
            for _, text, copies in items:
                m1, m2 = nd.minhash(text), nd.minhash(copies[r])
                if m1 is None or m2 is None:
                    cand_est.append(None)
                    continue
                h1, h2 = m1.hashvalues, m2.hashvalues
                band = any((h1[b * nd.rows:(b + 1) * nd.rows] == h2[b * nd.rows:(b + 1) * nd.rows]).all()
                           for b in range(nd.bands))
                cand_est.append(m1.jaccard(m2) if band else None)
                true_j.append(jaccard(shingle_set(normalize(text), "char", nd.n),
                                      shingle_set(normalize(copies[r]), "char", nd.n)))
            sweep[str(r)] = {"true_jaccard_median": round(statistics.median(true_j), 3),
                             **{str(t): sum(1 for e in cand_est if e is not None and e >= t) / len(items)
                                for t in (0.5, 0.6, 0.65, 0.7, 0.75, 0.8)}}
        res[name + "_sweep"] = sweep
    return res


# -- (b) precision on real unplanted documents -------------------------------------------------------------------------
def part_precision(data: Data) -> dict:
    a = data.args
    wiki = data.wiki[:a.docs]
    rev = data.sample(data.reviews, a.docs, "precision-rev")
    res: dict = {}
    for thr in (0.5, None):
        nd = NearDedup() if thr is None else NearDedup(threshold=thr)
        exact = ExactDedup()
        text_of: dict[str, str] = {}
        pairs = []
        exact_dups = 0
        dropped_chars: dict[str, int] = {}
        for src, rows in (("kowiki", wiki), ("reviews", rev)):
            for row in rows:
                text_of[row[0]] = row[1]
                if exact.seen(dedup_key(row[1]), row[0], src) is not None:
                    exact_dups += 1
                    continue
                hit = nd.match(row[0], src, row[1])
                if hit is not None:
                    pairs.append((hit, (src, row[0])))
                    dropped_chars[src] = dropped_chars.get(src, 0) + len(row[1])
        rows_out = []
        for (s1, d1), (s2, d2) in pairs:
            n1, n2 = normalize(text_of[d1]), normalize(text_of[d2])
            m1, m2 = nd.minhash(text_of[d1]), nd.minhash(text_of[d2])
            rows_out.append({"a": d1, "b": d2, "sources": f"{s1}/{s2}",
                             "true": round(jaccard(shingle_set(n1, "char", nd.n), shingle_set(n2, "char", nd.n)), 3),
                             "est": round(m1.jaccard(m2), 3), "ratio": round(ratio(n1, n2), 3),
                             "chars": max(len(text_of[d1]), len(text_of[d2])),
                             "ta": short(text_of[d1], 70), "tb": short(text_of[d2], 70)})
        key = "sweep" if thr is not None else "final"
        res[key] = {"threshold": nd.threshold, "documents": len(wiki) + len(rev), "kowiki": len(wiki),
                    "reviews": len(rev), "exact_dups": exact_dups, "indexed": len(nd), "pairs": rows_out,
                    "chars": {"kowiki": sum(len(t) for _, t in wiki), "reviews": sum(len(r[1]) for r in rev)},
                    "dropped_chars": dropped_chars}
    return res


# -- min_chars ---------------------------------------------------------------------------------------------------------
BUCKETS = (1, 5, 10, 20, 30, 40, 60, 100, 10 ** 9)


def bucket_of(n: int) -> str:
    for lo, hi in zip(BUCKETS, BUCKETS[1:]):
        if lo <= n < hi:
            return f"{lo}-{hi - 1}" if hi < 10 ** 9 else f">={lo}"
    return f"<{BUCKETS[0]}"


def part_minchars(data: Data) -> dict:
    base = NearDedup()
    nd = NearDedup(min_chars=base.n)
    exact = ExactDedup()
    stats: dict[str, dict] = {}
    examples: dict[str, list] = {}
    text_of: dict[str, str] = {}
    for doc, text, _ in data.reviews:
        if exact.seen(dedup_key(text), doc, "r") is not None:
            continue
        b = bucket_of(len(normalize(text)))
        st = stats.setdefault(b, {"docs": 0, "flagged": 0})
        st["docs"] += 1
        text_of[doc] = text
        hit = nd.match(doc, "r", text)
        if hit is not None:
            st["flagged"] += 1
            ex = examples.setdefault(b, [])
            if len(ex) < 4:
                ex.append([short(text_of[hit[1]], 50), short(text, 50)])
    # planted: one edit, and 3 % edits, per length bucket (an index holding only the originals of that bucket)
    by_bucket: dict[str, list] = {}
    for doc, text, _ in data.reviews:
        if len(normalize(text)) >= base.n:
            by_bucket.setdefault(bucket_of(len(normalize(text))), []).append((doc, text))
    for b, rows in by_bucket.items():
        rows = data.sample(rows, 400, f"minchars:{b}")
        for label, edits in (("one_edit", None), ("rate_3", 0.03)):
            nd2 = NearDedup(min_chars=base.n)
            owner = {}
            for doc, text in rows:
                hit = nd2.match(doc, "r", text)
                owner[doc] = hit if hit is not None else ("r", doc)
            caught = 0
            for i, (doc, text) in enumerate(rows):
                rng = random.Random(f"{data.args.seed}:minchars:{doc}:{label}")
                copy = mutate(text, 0.0 if edits is None else edits, rng)
                caught += nd2.find(copy) == owner[doc]
            stats[b][label] = round(caught / len(rows), 3)
    order = [bucket_of(lo) for lo in BUCKETS[:-1]]
    return {"buckets": [dict(bucket=b, **stats[b], examples=examples.get(b, [])) for b in order if b in stats],
            "n": base.n}


# -- (e) decontamination -----------------------------------------------------------------------------------------------
def plant_item(doc: str, item: str, mode: str, rng: random.Random) -> str | None:
    paras = doc.split("\n")
    at = rng.randrange(len(paras) + 1)
    if mode == "paragraph":
        paras.insert(at, item)
    elif mode == "quoted":
        k = rng.randrange(len(paras))
        paras[k] = paras[k] + f' 한 관람객은 "{item}"라고 평했다.'
    else:  # fragment: a contiguous 60 % of the item's words, as its own paragraph
        words = item.split()
        m = max(1, round(0.6 * len(words)))
        if m == len(words):
            return None
        s = rng.randrange(len(words) - m + 1)
        paras.insert(at, " ".join(words[s:s + m]))
    return "\n".join(paras)


def part_decon(data: Data) -> dict:
    a = data.args
    items = load_items([a.reviews])
    wiki = data.wiki[:a.docs]
    hosts = data.wiki[a.docs:a.docs + a.decon_planted] or data.wiki[:a.decon_planted]
    eligible = [it for it in items if len(normalize(it.text)) >= 20]
    chosen = data.sample(eligible, a.decon_planted, "decon-items")
    plants: dict[str, list] = {}
    for mode in ("paragraph", "quoted", "fragment"):
        rows = []
        for i, it in enumerate(chosen):
            t = plant_item(hosts[i % len(hosts)][1], it.text, mode, random.Random(f"{a.seed}:plant:{mode}:{i}"))
            if t is not None:
                rows.append((it, t))
        plants[mode] = rows
    # reviews against reviews: half the rows as the evaluation set, the other half (minus exact copies) as documents
    order = list(range(len(items)))
    random.Random(f"{a.seed}:halves").shuffle(order)
    half_a = [items[i] for i in sorted(order[: len(order) // 2])]
    keys_a = {dedup_key(it.text) for it in half_a}
    half_b = [items[i] for i in sorted(order[len(order) // 2:])][: a.docs]
    half_b = [it for it in half_b if dedup_key(it.text) not in keys_a]
    res: dict = {"items_file": str(a.reviews), "kowiki_docs": len(wiki), "planted": len(chosen), "grid": []}
    for n in (6, 8, 10, 13):
        print(f"decon: n={n}", flush=True)
        t0 = time.process_time()
        dc = Decontaminator(items, n_words=n)
        build = time.process_time() - t0
        row: dict = {"n_words": n, "stats": dc.stats(), "build_s": round(build, 2)}
        t0 = time.process_time()
        fp = [(d, dc.match(t)) for d, t in wiki]
        scan = time.process_time() - t0
        fp = [(d, it) for d, it in fp if it is not None]
        row["kowiki_flagged"] = len(fp)
        row["kowiki_docs_per_s"] = round(len(wiki) / scan, 1)
        row["kowiki_mb_per_s"] = round(sum(len(t.encode()) for _, t in wiki) / scan / 1e6, 2)
        row["kowiki_examples"] = [[d, it.line, short(it.text, 60)] for d, it in fp[:5]]
        whole_ids = {id(it) for it in items if len(normalize(it.text).split(" ")) < n}
        for mode, rows in plants.items():
            hit = sum(1 for it, t in rows if (m := dc.match(t)) is not None and normalize(m.text) == normalize(it.text))
            flagged = sum(1 for _, t in rows if dc.match(t) is not None)
            ngram_rows = [(it, t) for it, t in rows if id(it) not in whole_ids]
            row[f"recall_{mode}"] = {"n": len(rows), "right": hit, "flagged": flagged,
                                     "ngram_items": len(ngram_rows),
                                     "ngram_items_flagged": sum(1 for _, t in ngram_rows if dc.match(t) is not None)}
        dc_a = Decontaminator(half_a, n_words=n)
        rr = [(it, dc_a.match(it.text)) for it in half_b]
        rr = [(it, m) for it, m in rr if m is not None]
        row["reviews_vs_reviews"] = {"docs": len(half_b), "flagged": len(rr),
                                     "examples": [[short(m.text, 50), short(it.text, 50)] for it, m in rr[:4]]}
        res["grid"].append(row)
    # the whole-text rule: the index (first word -> length -> text) against the plain way, a substring test of every
    # short item in every document (word-bounded by spaces), on the first 200 articles, n_words = 8
    short_items = sorted({normalize(it.text) for it in items
                          if len(normalize(it.text)) >= 20 and len(normalize(it.text).split(" ")) < 8})
    docs = [normalize(t) for _, t in wiki[:200]]
    t0 = time.process_time()
    naive = [next((s for s in short_items if f" {s} " in f" {d} "), None) for d in docs]
    t_naive = time.process_time() - t0
    only_whole = Decontaminator([it for it in items if len(normalize(it.text).split(" ")) < 8], n_words=8)
    t0 = time.process_time()
    indexed = [only_whole.match(d) for d in docs]
    t_index = time.process_time() - t0
    res["whole_rule"] = {"docs": len(docs), "short_items": len(short_items), "naive_s": round(t_naive, 2),
                         "index_s": round(t_index, 3), "same_verdicts": sum((a is None) == (b is None)
                                                                            for a, b in zip(naive, indexed))}
    return res


# -- (f) speed and memory ----------------------------------------------------------------------------------------------
def part_speed(data: Data) -> dict:
    a = data.args
    wiki = data.wiki[: a.speed_articles]
    rev = data.sample(data.reviews, a.speed_reviews, "speed-rev")
    res: dict = {}
    for name, rows in (("articles", wiki), ("reviews", rev)):
        chars = sum(len(t) for _, t, *rest in rows)
        # exact
        t0 = time.process_time()
        ex = ExactDedup()
        for doc, text, *rest in rows:
            ex.seen(dedup_key(text), doc, name)
        t_exact = time.process_time() - t0
        # near (repeated best of 2: the VM is shared)
        t_near = []
        for _ in range(2):
            nd = NearDedup()
            t0 = time.process_time()
            for doc, text, *rest in rows:
                nd.match(doc, name, text)
            t_near.append(time.process_time() - t0)
        indexed = len(nd)
        del nd
        gc.collect()
        # the pipeline's way: exact key first, near dedup for the documents it lets through (normalised once: the
        # second normalize() of the same text is a cache hit)
        ex, nd = ExactDedup(), NearDedup()
        t0 = time.process_time()
        for doc, text, *rest in rows:
            if ex.seen(dedup_key(text), doc, name) is None:
                nd.match(doc, name, text)
        t_both = time.process_time() - t0
        del nd
        gc.collect()
        # memory: the index after all documents, traced (strings the caller holds are not counted)
        docs = [(doc, text) for doc, text, *rest in rows]
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        nd = NearDedup()
        for doc, text in docs:
            nd.match(doc, name, text)
        near_bytes = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        del nd
        gc.collect()
        keys = [(dedup_key(text), doc) for doc, text in docs]
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        ex = ExactDedup()
        for k, doc in keys:
            ex.seen(k, doc, name)
        exact_bytes = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        # the shingle hash: datasketch's default (SHA-1 of each shingle's UTF-8, one hashlib call per shingle) vs
        # NearDedup's (one numpy pass over the code points), the same 3-gram sets, MinHash included in both
        from datasketch import MinHash

        sub = docs[:500]
        nd = NearDedup()
        t0 = time.process_time()
        for _, text in sub:
            norm = normalize(text)
            m = MinHash(num_perm=nd.num_perm, seed=nd.seed)
            m.update_batch([g.encode("utf-8") for g in shingle_set(norm, "char", nd.n)])
        t_sha1 = time.process_time() - t0
        t0 = time.process_time()
        for _, text in sub:
            nd.minhash(text)
        t_numpy = time.process_time() - t0
        res[name + "_hash"] = {"docs": len(sub), "sha1_docs_per_s": round(len(sub) / t_sha1),
                               "numpy_docs_per_s": round(len(sub) / t_numpy)}
        res[name] = {"docs": len(rows), "mean_chars": round(chars / len(rows)), "indexed": indexed,
                     "exact_docs_per_s": round(len(rows) / t_exact), "near_docs_per_s": round(len(rows) / min(t_near)),
                     "near_mchars_per_s": round(chars / min(t_near) / 1e6, 3),
                     "both_docs_per_s": round(len(rows) / t_both),
                     "near_bytes_per_indexed_doc": round(near_bytes / max(1, indexed)),
                     "exact_bytes_per_doc": round(exact_bytes / len(ex))}
    return res


# -- report ------------------------------------------------------------------------------------------------------------
def render(results: dict, args: argparse.Namespace) -> str:
    L: list[str] = [MARKER, ""]
    commands: dict[str, list[str]] = {}
    for part, res in results.items():
        commands.setdefault(res.get("_command", "?"), []).append(f"{part} ({res['_wall_s']} s)")
    for cmd, done in commands.items():
        L.append(f"`{cmd}` ran: {', '.join(done)}  ")
    L.append("")
    for name, path in (("kowiki", args.kowiki), ("reviews", args.reviews)):
        L.append(f"* {name}: `{path}` ({Path(path).stat().st_size / 1e6:.1f} MB)")
    L.append("* machine: 2 shared vCPUs; rates are documents per CPU-second of this process (one core)")
    L.append("")
    if "exact" in results:
        r = results["exact"]
        L += ["## (d) Exact duplicates on the real data", "",
              "Documents that are a duplicate of an earlier one, by what the key normalises. `newly merged`: "
              "documents that join a group only at this level; `label conflicts`: duplicates whose NSMC label "
              "differs from the first document's (a proxy for merging reviews that mean different things).", "",
              "| data | key | documents | duplicates | newly merged | label conflicts (all / newly merged) | CPU s |",
              "|---|---|---:|---:|---:|---:|---:|"]
        for name in ("reviews", "kowiki"):
            for lev in r[name]:
                lc = (f"{lev['label_conflicts']:,} / {lev.get('newly_merged_label_conflicts', '–')}"
                      if "label_conflicts" in lev else "–")
                L.append(f"| {name} | {lev['level']} | {lev['documents']:,} | {lev['duplicates']:,} | "
                         f"{lev.get('newly_merged', '–')} | {lc} | {lev['cpu_s']} |")
        L += ["", f"Reviews under `dedup_key`: {r['reviews_in_groups']:,} documents in {r['reviews_groups']:,} groups "
              "of two or more. Most repeated: " + ", ".join(f"`{t}` ×{c}" for t, c in r["reviews_top"]) + ".", ""]
        for name in ("reviews", "kowiki"):
            for lev in r[name][1:]:
                if lev.get("examples"):
                    L.append(f"Examples newly merged by *{lev['level']}* ({name}): " +
                             "; ".join(f"`{x}` = `{y}`" for x, y in lev["examples"]))
                    L.append("")
    if "shingles" in results:
        r = results["shingles"]
        s = r["sample"]
        L += ["## (c) Shingles: characters vs eojeol vs kiwipiepy morphemes", "",
              f"Planted: {s['planted_articles']} articles and {s['planted_reviews']} reviews (normalised length "
              f">= 20), one edited copy per rate; unplanted: {s['unplanted_articles']:,} articles + "
              f"{s['unplanted_reviews']:,} exact-deduplicated reviews. All with 14 bands x 8 rows, estimated-Jaccard confirmation 0.7, min_chars "
              "20. `not edits`: confirmed unplanted pairs whose difflib ratio (independent of the shingles) is below "
              "0.8. Speed: documents per CPU-second (kiwipiepy's own time included for morphemes).", "",
              "| shingle | articles 1/3/5/10/20 % | reviews 1/3/5/10/20 % | unplanted pairs | not edits | "
              "median ratio | articles/s | reviews/s |", "|---|---|---|---:|---:|---:|---:|---:|"]
        for c in r["configs"]:
            rec = {k: "/".join(f"{100 * c['recall_' + k][str(x)]['caught'] / c['recall_' + k][str(x)]['n']:.0f}"
                               for x in RATES) for k in ("articles", "reviews")}
            sp = c["docs_per_s"]
            L.append(f"| {c['shingle']} {c['n']}-gram | {rec['articles']} | {rec['reviews']} | {c['unplanted_pairs']} "
                     f"| {c['unplanted_not_edits']} | {c['unplanted_ratio_median']} | {sp['articles']:,} | "
                     f"{sp['reviews']:,} |")
        L.append("")
        for c in r["configs"]:
            if c["worst"]:
                L.append(f"Lowest-ratio confirmed pairs, {c['shingle']} {c['n']}-gram: " +
                         "; ".join(f"{x} `{y}` ~ `{z}`" for x, y, z in c["worst"]))
                L.append("")
        for c in r["configs"]:
            if "articles_kiwi_share" in c["docs_per_s"]:
                L.append(f"kiwipiepy's share of the CPU time, {c['shingle']} {c['n']}-gram: articles "
                         f"{pct(c['docs_per_s']['articles_kiwi_share'])}, reviews "
                         f"{pct(c['docs_per_s']['reviews_kiwi_share'])}.")
        L.append("")
    if "recall" in results:
        r = results["recall"]
        p = r["params"]
        L += ["## (a) Near-dedup recall on planted copies (the defaults)", "",
              f"`NearDedup()`: {p['shingle']} {p['n']}-grams, {p['bands']} bands x {p['rows']} rows, confirmation "
              f"estimated Jaccard >= {p['threshold']}, min_chars {p['min_chars']}. The originals are indexed; each "
              "edited copy is looked up (`find`). Edits: max(1, round(rate x length)) random character substitutions, "
              "insertions, deletions (seeded).", "",
              "| documents | median chars | edit rate | caught | right original | true Jaccard (median) |",
              "|---|---:|---:|---:|---:|---:|"]
        for name in ("articles", "reviews"):
            for x in RATES:
                v = r[name][str(x)]
                L.append(f"| {name} ({v['n']}) | {r[name + '_median_chars']:.0f} | {100 * x:.0f} % | "
                         f"{pct(v['caught'] / v['n'])} | {pct(v['right'] / v['n'])} | "
                         f"{r[name + '_sweep'][str(x)]['true_jaccard_median']} |")
        L += ["", "Confirmation threshold swept (pairwise: a shared LSH band and estimated Jaccard >= t):", "",
              "| documents | edit rate | t=0.5 | 0.6 | 0.65 | 0.7 | 0.75 | 0.8 |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name in ("articles", "reviews"):
            for x in RATES:
                v = r[name + "_sweep"][str(x)]
                L.append(f"| {name} | {100 * x:.0f} % | " + " | ".join(pct(v[str(t)]) for t in
                                                                       (0.5, 0.6, 0.65, 0.7, 0.75, 0.8)) + " |")
        L.append("")
    if "precision" in results:
        r = results["precision"]
        f = r["final"]
        thr = f["threshold"]
        pairs = f["pairs"]
        below = [x for x in pairs if x["true"] < thr]
        L += ["## (b) Precision on real unplanted documents", "",
              f"{f['documents']:,} documents ({f['kowiki']:,} kowiki articles in file order, then {f['reviews']:,} "
              f"sampled reviews), exact dedup first ({f['exact_dups']:,} exact duplicates), then `NearDedup()`. Every "
              f"pair it calls a near duplicate ({len(pairs)}) is checked by the true Jaccard similarity of the two "
              "char-shingle sets.", "",
              f"* pairs: {len(pairs)}; kowiki/kowiki {sum(x['sources'] == 'kowiki/kowiki' for x in pairs)}, "
              f"reviews/reviews {sum(x['sources'] == 'reviews/reviews' for x in pairs)}, mixed "
              f"{sum(x['sources'] not in ('kowiki/kowiki', 'reviews/reviews') for x in pairs)}",
              f"* true Jaccard below the threshold {thr}: **{len(below)}** "
              f"(min {min((x['true'] for x in pairs), default=float('nan'))}, lowest: "
              + ", ".join(str(x["true"]) for x in sorted(pairs, key=lambda x: x["true"])[:5]) + ")",
              f"* true Jaccard below 0.5: {sum(x['true'] < 0.5 for x in pairs)}; difflib ratio below 0.8: "
              f"{sum(x['ratio'] < 0.8 for x in pairs)}",
              f"* the longest document in any pair: {max((x.get('chars', 0) for x in pairs), default=0):,} characters; "
              f"pairs whose documents are all under 100 characters: {sum(x.get('chars', 0) < 100 for x in pairs)}"]
        for src in ("kowiki", "reviews"):
            k = sum(x["sources"].endswith("/" + src) for x in pairs)
            L.append(f"* {src}: {k} documents dropped as near duplicates, "
                     f"{pct(f['dropped_chars'].get(src, 0) / f['chars'][src])} of its characters")
        L.append("")
        if pairs:
            L += ["| true J | est J | ratio | first kept | duplicate |", "|---:|---:|---:|---|---|"]
            show = sorted(pairs, key=lambda x: x["true"])[:5]
            rng = random.Random(f"{args.seed}:precision-examples")
            rest = [x for x in pairs if x not in show]
            show += rng.sample(rest, min(5, len(rest)))
            for x in show:
                L.append(f"| {x['true']} | {x['est']} | {x['ratio']} | {x['a']}: `{x['ta']}` | {x['b']}: `{x['tb']}` |")
            L.append("")
        s = r["sweep"]
        L += [f"The same documents with confirmation at {s['threshold']} (every pair the LSH proposes with estimated "
              "Jaccard >= 0.5), by estimated Jaccard:", "", "| est J >= | pairs | true J < 0.7 | true J < 0.6 | "
              "ratio < 0.8 |", "|---:|---:|---:|---:|---:|"]
        for t in (0.5, 0.6, 0.65, 0.7, 0.75, 0.8):
            sel = [x for x in s["pairs"] if x["est"] >= t]
            L.append(f"| {t} | {len(sel)} | {sum(x['true'] < 0.7 for x in sel)} | {sum(x['true'] < 0.6 for x in sel)} "
                     f"| {sum(x['ratio'] < 0.8 for x in sel)} |")
        L.append("")
    if "minchars" in results:
        r = results["minchars"]
        L += ["## Where near dedup stops meaning anything: reviews by normalised length", "",
              f"All exact-deduplicated reviews through `NearDedup(min_chars={r['n']})` (the smallest that gives a "
              "shingle), in file order: `flagged` = unplanted reviews it calls a near duplicate of an earlier one. "
              "Planted, per length bucket (up to 400 reviews, an index of those originals): a copy with one "
              "character edit, and with 3 % edits (>= 1), found to duplicate its original.", "",
              "| chars | reviews | flagged | flagged % | one edit caught | 3 % edits caught | flagged examples |",
              "|---|---:|---:|---:|---:|---:|---|"]
        for b in r["buckets"]:
            ex = "; ".join(f"`{x}` ~ `{y}`" for x, y in b["examples"][:2])
            L.append(f"| {b['bucket']} | {b['docs']:,} | {b['flagged']:,} | {pct(b['flagged'] / b['docs'])} | "
                     f"{pct(b.get('one_edit', 0))} | {pct(b.get('rate_3', 0))} | {ex} |")
        L.append("")
    if "decon" in results:
        r = results["decon"]
        L += ["## (e) Decontamination: n_words", "",
              f"Evaluation items: every review of `{r['items_file']}` (`load_items`). False positives: "
              f"{r['kowiki_docs']:,} unplanted kowiki articles flagged. Recall: {r['planted']:,} items "
              "(normalised length >= 20) planted into kowiki articles as their own paragraph, quoted inside a "
              "paragraph (`... 한 관람객은 \"<review>\"라고 평했다.`), or as a fragment (a contiguous 60 % of the "
              "words, own paragraph); `right` = the planted item (or one with the same normalised text) returned.",
              "", "| n_words | items as n-grams / whole / skipped | indexed n-grams | kowiki flagged | paragraph "
              "right | quoted right | fragment flagged | fragment, n-gram items | reviews vs reviews flagged | "
              "scan MB/s |", "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for g in r["grid"]:
            st = g["stats"]
            as_ng = st["items"] - st["skipped_short"] - st["indexed_whole"]
            fr = g["recall_fragment"]
            rv = g["reviews_vs_reviews"]
            L.append(f"| {g['n_words']} | {as_ng:,} / {st['indexed_whole']:,} / {st['skipped_short']:,} | "
                     f"{st['indexed_ngrams']:,} | {g['kowiki_flagged']} | "
                     f"{pct(g['recall_paragraph']['right'] / g['recall_paragraph']['n'])} | "
                     f"{pct(g['recall_quoted']['right'] / g['recall_quoted']['n'])} | "
                     f"{pct(fr['flagged'] / fr['n'])} ({fr['n']}) | "
                     f"{pct(fr['ngram_items_flagged'] / max(1, fr['ngram_items']))} ({fr['ngram_items']}) | "
                     f"{rv['flagged']:,} of {rv['docs']:,} | {g['kowiki_mb_per_s']} |")
        L.append("")
        for g in r["grid"]:
            if g["kowiki_examples"]:
                L.append(f"kowiki flagged at n={g['n_words']}: " +
                         "; ".join(f"{d} by line {ln} `{t}`" for d, ln, t in g["kowiki_examples"]))
                L.append("")
        if "whole_rule" in r:
            w = r["whole_rule"]
            L += [f"Whole-text rule, n_words 8, {w['short_items']:,} distinct short items, the first {w['docs']} "
                  f"articles: the index (first word -> length -> text) {w['index_s']} CPU-s; a substring test of every "
                  f"item in every document {w['naive_s']} CPU-s; the same verdict for {w['same_verdicts']} of "
                  f"{w['docs']} documents.", ""]
        for g in r["grid"]:
            ex = g["reviews_vs_reviews"]["examples"]
            if ex:
                L.append(f"Reviews vs reviews at n={g['n_words']}: " + "; ".join(f"`{x}` in `{y}`" for x, y in ex))
                L.append("")
    if "speed" in results:
        r = results["speed"]
        L += ["## (f) Throughput and memory (one core)", "",
              "| documents | n | mean chars | exact docs/s | near docs/s | near M chars/s | exact then near docs/s "
              "| near index bytes/doc | exact bytes/doc |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name in ("articles", "reviews"):
            v = r[name]
            L.append(f"| {name} | {v['docs']:,} | {v['mean_chars']:,} | {v['exact_docs_per_s']:,} | "
                     f"{v['near_docs_per_s']:,} | {v['near_mchars_per_s']} | {v['both_docs_per_s']:,} | "
                     f"{v['near_bytes_per_indexed_doc']:,} | "
                     f"{v['exact_bytes_per_doc']:,} |")
        L.append("")
        for name in ("articles", "reviews"):
            h = r.get(name + "_hash")
            if h:
                L.append(f"* shingle hash, {h['docs']} {name}: datasketch's default (SHA-1 per shingle) "
                         f"{h['sha1_docs_per_s']:,} docs/s, NearDedup's numpy pass {h['numpy_docs_per_s']:,} docs/s "
                         "(normalisation and MinHash included in both)")
        L += ["", "Bytes: tracemalloc of the index alone (the caller's document strings not counted; the doc-id "
              "strings it keeps are).", ""]
    return "\n".join(L) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kowiki", type=Path, required=True, help="WikiExtractor text (.xz or plain)")
    ap.add_argument("--reviews", type=Path, required=True, help="NSMC-format TSV (id, document, label)")
    ap.add_argument("--docs", type=int, default=10000, help="unplanted documents per source for precision/decon")
    ap.add_argument("--out", type=Path, required=True, help="directory for dedup.md")
    ap.add_argument("--work", type=Path, default=Path("bench/out/dedup"), help="per-part JSON results")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cmp-articles", type=int, default=300)
    ap.add_argument("--cmp-reviews", type=int, default=1500)
    ap.add_argument("--cmp-unplanted-articles", type=int, default=1500)
    ap.add_argument("--cmp-unplanted-reviews", type=int, default=10000)
    ap.add_argument("--recall-articles", type=int, default=1000)
    ap.add_argument("--recall-reviews", type=int, default=3000)
    ap.add_argument("--decon-planted", type=int, default=2000)
    ap.add_argument("--speed-articles", type=int, default=3000)
    ap.add_argument("--speed-reviews", type=int, default=20000)
    args = ap.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    bad = [p for p in parts if p not in PARTS]
    if bad:
        ap.error(f"unknown part(s) {bad}; choose from {PARTS}")
    args.work.mkdir(parents=True, exist_ok=True)
    data = Data(args)
    command = "python bench/dedup_bench.py " + " ".join(sys.argv[1:] if argv is None else argv)
    for part in parts:
        t0 = time.perf_counter()
        print(f"== {part}", flush=True)
        res = globals()[f"part_{part}"](data)
        res["_wall_s"] = round(time.perf_counter() - t0, 1)
        res["_command"] = command
        (args.work / f"{part}.json").write_text(json.dumps(res, ensure_ascii=False, indent=1), encoding="utf-8")
        print(f"== {part}: {res['_wall_s']} s", flush=True)
    results = {p: json.loads((args.work / f"{p}.json").read_text(encoding="utf-8"))
               for p in PARTS if (args.work / f"{p}.json").exists()}
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "dedup.md"
    head = "# Dedup and decontamination (issue 22)\n\n"
    if out.exists():
        old = out.read_text(encoding="utf-8")
        if MARKER in old:
            head = old.split(MARKER, 1)[0]
    out.write_text(head + render(results, args), encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
