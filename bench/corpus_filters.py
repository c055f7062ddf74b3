"""Benchmark and threshold evidence for koroberta/corpus/filters.py and koroberta/corpus/pii.py (issue 22).

    .venv/bin/python bench/corpus_filters.py \\
        --kowiki ../shared/data/kowiki-text/kowiki-extracted-AA.txt.xz \\
        --reviews ../shared/data/nsmc/ratings_train.rebuilt.txt --out bench/results

Both inputs are real text (the kowiki shard is WikiExtractor output of real Korean Wikipedia articles; the reviews are
NSMC-format movie reviews rebuilt from the raw Naver crawl) — nothing here is synthesized. Documents are prepared the
way the corpus stage prepares them before the filters run: kowiki through the stage's own WikiExtractor reader and
clean step (NFC, whitespace collapse, lines < 2 characters dropped, literal special tokens removed); every review is
one document (``clean_text``).

Writes ``OUT/corpus_filters.md``: drop rates per filter with the web and wiki profiles, the distributions behind
each threshold (on the text the quality filters see: after boilerplate, repeats and PII), samples of what each
filter drops, PII matches per kind with a masked sample and the guards' counts, the rules measured but not adopted
(incl. FineWeb-2's own rules on Kiwi morphemes, on a sample), and single-core throughput. A section below the line
``<!-- hand-written below -->`` in an existing file is kept (the precision read from the samples).

Run it on an otherwise idle core: throughput is CPU time of this single process (``time.process_time``).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import random
import re
import sys
import time
import unicodedata
from pathlib import Path

from koroberta.corpus import filters as F
from koroberta.corpus import pii as P
from koroberta.corpus.sources import ReadStats, iter_wikiextractor
from koroberta.corpus.wikitext import keep_line, remove_special_literals
from koroberta.text import clean_text, collapse_ws, normalize_block

KEEP_MARK = "<!-- hand-written below -->"
SEED = 22


# -- data -------------------------------------------------------------------------------------------------------------
def load_kowiki(path: Path, limit: int | None) -> list[tuple[str, str, str]]:
    """(id, title, text) for every document, prepared like the corpus stage's clean step (empty ones included)."""
    out = []
    for p in iter_wikiextractor([path], ReadStats()):
        block = normalize_block(p.text, "NFC")
        lines = [l for l in (collapse_ws(x) for x in block.split("\n")) if keep_line(l, 2)]
        body, _ = remove_special_literals("\n".join(lines), 2)
        out.append((p.id, p.title, body))
        if limit and len(out) >= limit:
            break
    return out


def load_reviews(path: Path, limit: int | None) -> list[tuple[str, str, str]]:
    out = []
    with open(path, encoding="utf-8") as f:
        next(f)  # header: id, document, label
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3:
                continue
            out.append((parts[0], "", clean_text(parts[1])))
            if limit and len(out) >= limit:
                break
    return out


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


# -- helpers ----------------------------------------------------------------------------------------------------------
def pct(values: list[float], ps=(0.1, 0.5, 1, 5, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9)) -> str:
    if not values:
        return "(none)"
    v = sorted(values)
    out = []
    for p in ps:
        k = min(len(v) - 1, max(0, int(round(p / 100 * (len(v) - 1)))))
        out.append(f"p{p:g} {v[k]:.3g}")
    return " · ".join(out)


def short(s: str, n: int = 110) -> str:
    s = s.replace("\n", " ⏎ ").replace("|", "¦")
    return s if len(s) <= n else s[:n] + "…"


def mask(s: str) -> str:
    """A PII match with its identifying part hidden: e-mail ``b*******@naver.com``; numbers keep their first 3
    digits and their shape (``010-****-****``)."""
    if "@" in s:
        local, _, dom = s.partition("@")
        return local[:1] + "*" * (len(local) - 1) + "@" + dom
    seen = 0
    out = []
    for c in s:
        if c.isdigit():
            seen += 1
            out.append(c if seen <= 3 else "*")
        else:
            out.append(c)
    return "".join(out)


def masked_context(text: str, start: int, end: int, width: int = 12) -> str:
    before = re.sub(r"\d", "#", text[max(0, start - width):start])
    after = re.sub(r"\d", "#", text[end:end + width])
    return short(f"{before}⟦{mask(text[start:end])}⟧{after}", 80)


def prepared(text: str, prof: F.Profile) -> str:
    """The text as the quality filters see it: the same edit steps filter_document runs before them."""
    return F.apply_edits(text, prof, {})


def _is_year_range(s: str) -> bool:
    a, b = int(s[:4]), int(s[5:])
    return 1000 <= b <= 2100 and b >= a


def _not_year_ranges(docs: list, rx: re.Pattern) -> list[str]:
    """Masked contexts of the business-number-shaped strings that are not "1840-1858"-style year ranges."""
    return [masked_context(d[2], *m.span()) for d in docs for m in rx.finditer(d[2]) if not _is_year_range(m.group())]


# -- sections ---------------------------------------------------------------------------------------------------------
def run_profiles(sources: dict[str, list], md: list[str]) -> dict:
    md.append("## Drop rates per filter\n")
    empty = sum(1 for d in sources["kowiki"] if not d[2])
    md.append(f"Each review is one document. Kowiki counts include the {empty:,} WikiExtractor documents that are "
              "empty after the clean step (redirect stubs and pages whose body WikiExtractor dropped), which the wiki "
              "and web profiles drop as `too_short` (the stage drops them earlier, as `empty_after_cleaning`); the "
              "last column leaves empty documents out.\n")
    results = {}
    rows = []
    thr_rows = []
    for prof_name in ("web", "wiki"):
        prof = F.make_profile(prof_name)
        for src, docs in sources.items():
            reasons: collections.Counter = collections.Counter()
            edits: collections.Counter = collections.Counter()
            dropped: dict[str, list] = collections.defaultdict(list)
            kept_texts = []
            chars = sum(len(d[2]) for d in docs)
            t0 = time.process_time()
            for d in docs:
                new, reason, counters = F.filter_document(d[2], prof)
                edits.update(counters)
                if new is None:
                    reasons[reason] += 1
                    dropped[reason].append(d)
                else:
                    kept_texts.append((d, new))
            cpu = time.process_time() - t0
            results[(prof_name, src)] = dict(reasons=reasons, edits=edits, dropped=dropped, kept=kept_texts, cpu=cpu)
            n = len(docs)
            nonempty = sum(1 for d in docs if d[2])
            for r in F.FILTER_NAMES:
                empty_adj = reasons[r] - (n - nonempty if r == "too_short" else 0)
                rows.append(f"| {prof_name} | {src} | {r} | {reasons[r]:,} | {100 * reasons[r] / n:.2f} % | "
                            f"{100 * empty_adj / max(1, nonempty):.2f} % |")
            kept = n - sum(reasons.values())
            rows.append(f"| {prof_name} | {src} | **kept** | {kept:,} | {100 * kept / n:.2f} % | "
                        f"{100 * kept / max(1, nonempty):.2f} % |")
            thr_rows.append(f"| {prof_name} | {src} | {n:,} | {chars / 1e6:.1f} | {cpu:.2f} | {n / cpu:,.0f} | "
                            f"{chars / 1e6 / cpu:.1f} |")
            edit_s = ", ".join(f"{k} {v:,}" for k, v in sorted(edits.items())) or "none"
            md_edits = f"* {prof_name} / {src}: edits — {edit_s}"
            results[(prof_name, src)]["edit_line"] = md_edits
    md.append("| profile | source | filter | documents | of all | of non-empty |\n|---|---|---|---:|---:|---:|")
    md.extend(rows)
    md.append("")
    md.extend(results[(p, s)]["edit_line"] for p in ("web", "wiki") for s in sources)
    md.append("\n## Throughput (1 core)\n")
    md.append("`filter_document` in this one process, CPU seconds (`time.process_time`), all documents of the source "
              "(kowiki including its empty stubs).\n")
    md.append("| profile | source | documents | M characters | CPU s | documents/s | M characters/s |\n"
              "|---|---|---:|---:|---:|---:|---:|")
    md.extend(thr_rows)
    md.append("")
    return results


def thresholds(sources: dict[str, list], md: list[str]) -> dict[str, dict[str, list]]:
    """Distributions of each quality measure on the web profile's edited text, and marginal drop counts."""
    web = F.make_profile("web")
    feats: dict[str, dict[str, list]] = {}
    for src, docs in sources.items():
        f = feats[src] = collections.defaultdict(list)
        for d in docs:
            if not d[2]:
                continue
            t = prepared(d[2], web)
            if not t:
                continue
            letters, hangul = F.letter_shares(t)
            f["chars"].append(len(t))
            f["letters"].append(letters)
            f["hangul"].append(hangul)
            nl = t.count("\n") + 1
            f["lines"].append(nl)
            if nl >= 2:
                f["dup_lines"].append(F.dup_line_share(t))
            f["repeated"].append(F.repeated_char_share(t))
            f["words"].append(len(t.split()))
            f["text"].append(t)
    md.append("## Distributions behind each threshold\n")
    md.append("Measured on the text the quality filters see (web profile: after boilerplate, repeats and PII), "
              "documents that are not empty there. Percentiles, then how many documents each value of the threshold "
              "would drop on its own (marginal, before the other filters).\n")

    def table(key: str, title: str, cands: list[float], below: bool, note: str, chosen: float):
        md.append(f"### {title}\n\n{note}\n")
        for src in sources:
            md.append(f"* {src} ({len(feats[src][key]):,} documents): {pct(feats[src][key])}")
        head = "| threshold | " + " | ".join(f"{s} drops" for s in sources) + " |"
        md.append("\n" + head + "\n|---|" + "---:|" * len(sources))
        for c in cands:
            cells = []
            for src in sources:
                v = feats[src][key]
                n = sum(1 for x in v if (x < c if below else x > c))
                cells.append(f"{n:,} ({100 * n / max(1, len(feats[src]['chars'])):.3f} %)")
            mark = " ← chosen" if c == chosen else ""
            md.append(f"| {'<' if below else '>'} {c:g}{mark} | " + " | ".join(cells) + " |")
        md.append("")

    table("letters", "few_letters: letters / non-space characters", [0.1, 0.15, 0.2, 0.25, 0.3, 0.4], True,
          "Catches number lists and symbol strings. Reviews between 0.2 and 0.3 are still real text written with "
          "many dots (samples below).", F.MIN_LETTER_SHARE)
    table("hangul", "not_korean: Hangul / letters (stand-in for GlotLID ≥ 0.842)", [0.05, 0.1, 0.2, 0.3, 0.4, 0.5],
          True, "Hangul syllables carry about two to three Latin letters' worth of text each, so a 0.2 share of "
          "letters is already a sizeable Korean part; 0.2-0.3 holds Korean comments quoting English.",
          F.MIN_HANGUL_SHARE)
    table("dup_lines", "duplicate_lines: share of lines repeating an earlier line (FineWeb-2 0.374)",
          [0.2, 0.3, 0.374, 0.5], False, "Documents with at least 2 lines (a single line cannot repeat).",
          F.MAX_DUP_LINE_SHARE)
    table("repeated", f"repeated_text: share of characters in a repeated {F.REPEAT_NGRAM}-character string",
          [0.3, 0.4, 0.5, 0.6, 0.7], False,
          "Gopher's duplicate-n-gram measure over characters. Every review is ≤ 140 characters, so this is where "
          "short texts are judged: a text repeated exactly twice scores ≤ 0.5 by construction.",
          F.MAX_REPEATED_CHAR_SHARE)

    # n-gram length of repeated_text: the same threshold with 5 and 20 characters
    md.append("Window length, at the chosen threshold > 0.5 (drop counts):\n")
    md.append("| window | " + " | ".join(sources) + " |\n|---|" + "---:|" * len(sources))
    for n in (5, F.REPEAT_NGRAM, 20):
        cells = []
        for src in sources:
            cnt = sum(1 for t in feats[src]["text"] if F.repeated_char_share(t, n, 0.5) > 0.5)
            cells.append(f"{cnt:,}")
        md.append(f"| {n} characters | " + " | ".join(cells) + " |")
    md.append("\n5 characters flags ordinary long articles (names and set phrases recur); 20 misses short spam "
              "(`귀염 귀염 귀염 귀염 귀염` is 14 characters).\n")
    return feats


def min_chars_section(sources: dict[str, list], md: list[str]) -> None:
    web = F.make_profile("web")
    md.append("### min_chars (web)\n")
    md.append("Length of each review after the web edits (repeats shortened), and the share of reviews of that "
              "length that are one word (no space) — KcBERT drops texts under 10 characters because they are "
              "mostly single words.\n")
    lens = []
    oneword: dict[int, list[int]] = collections.defaultdict(lambda: [0, 0])
    for d in sources["reviews"]:
        t = prepared(d[2], web)
        lens.append(len(t))
        b = min(len(t), 16)
        oneword[b][0] += 1
        oneword[b][1] += 1 if (t and " " not in t) else 0
    n = len(lens)
    total_chars = sum(lens)
    md.append("| length | reviews | one word |\n|---:|---:|---:|")
    for L in range(0, 17):
        a, b = oneword[L]
        md.append(f"| {L if L < 16 else '≥ 16'} | {a:,} | {100 * b / max(1, a):.0f} % |")
    md.append("\n| min_chars | reviews dropped | characters dropped |\n|---:|---:|---:|")
    for c in (2, 5, 8, 10, 12, 15, 20, 100):
        dn = sum(1 for x in lens if x < c)
        dc = sum(x for x in lens if x < c)
        mark = " ← web" if c == F.WEB_MIN_CHARS else (" ← wiki (today)" if c == 100 else "")
        md.append(f"| {c}{mark} | {dn:,} ({100 * dn / n:.2f} %) | {100 * dc / max(1, total_chars):.2f} % |")
    md.append("")


def samples_section(results: dict, sources: dict[str, list], md: list[str]) -> None:
    md.append("## What the web profile drops (samples)\n")
    md.append(f"Up to 12 documents per filter and source, a seeded ({SEED}) sample, shown as the filters saw them "
              "(after the web edits: PII is already a placeholder). Kowiki: `title :: text`.\n")
    web = F.make_profile("web")
    rng = random.Random(SEED)
    for src in sources:
        dropped = results[("web", src)]["dropped"]
        for r in F.FILTER_NAMES:
            docs = [d for d in dropped.get(r, []) if d[2]]
            if not docs:
                continue
            md.append(f"**{src} — {r}** ({len(dropped[r]):,})\n")
            for d in rng.sample(docs, min(12, len(docs))):
                t = prepared(d[2], web)
                md.append(f"* {short((d[1] + ' :: ' if d[1] else '') + t)} [{len(t)}]")
            md.append("")
    # the band just above the letters/hangul thresholds: what is kept
    md.append("**Kept just above the thresholds (reviews, 0.2 ≤ share < 0.3)**\n")
    kept = [t for (_, t) in [(d, prepared(d[2], web)) for d in sources["reviews"] if d[2]] if t]
    for name, fn in (("letters", lambda t: F.letter_shares(t)[0]), ("hangul", lambda t: F.letter_shares(t)[1])):
        band = [t for t in kept if 0.2 <= fn(t) < 0.3]
        md.append(f"* {name} ({len(band):,}): " + " ∣ ".join(short(t, 60) for t in rng.sample(band, min(8, len(band)))))
    md.append("")


def repeats_section(sources: dict[str, list], md: list[str]) -> None:
    md.append("## Repeat normalisation: which characters\n")
    md.append("Runs of ≥ 3 identical characters in the raw documents, by character class and run length (3, 4+), "
              "with examples of the runs of exactly 3 — the evidence for normalising jamo and punctuation from 3, "
              "Hangul syllables and `.` only from 4, and never digits or other letters.\n")
    run = re.compile(r"(.)\1{2,}")

    def cls(c: str) -> str:
        o = ord(c)
        if 0xAC00 <= o <= 0xD7A3:
            return "Hangul syllable"
        if 0x3131 <= o <= 0x318E or 0x1100 <= o <= 0x11FF:
            return "Hangul jamo"
        if c == ".":
            return "."
        if c.isdigit():
            return "digit"
        if c.isalpha():
            return "Latin letter" if c.isascii() else "other letter"
        return "other punctuation/symbol" if unicodedata.category(c)[0] in "PS" else "other"

    md.append("| class | " + " | ".join(f"{s} runs of 3 | {s} runs of 4+" for s in sources) + " |\n|---|"
              + "---:|---:|" * len(sources))
    counts: dict[str, collections.Counter] = {}
    ex3: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    for src, docs in sources.items():
        c = counts[src] = collections.Counter()
        for d in docs:
            t = d[2]
            for m in run.finditer(t):
                k = cls(m.group(1))
                L = len(m.group())
                c[(k, 3 if L == 3 else 4)] += 1
                if L == 3 and len(ex3[(src, k)]) < 400:
                    ex3[(src, k)].append(t[max(0, m.start() - 6):m.end() + 6].replace("\n", " "))
    classes = ["Hangul jamo", "Hangul syllable", ".", "other punctuation/symbol", "digit", "Latin letter",
               "other letter", "other"]
    for k in classes:
        md.append(f"| {k} | " + " | ".join(f"{counts[s][(k, 3)]:,} | {counts[s][(k, 4)]:,}" for s in sources) + " |")
    rng = random.Random(SEED)
    md.append("")
    for k in ("Hangul syllable", "Latin letter", "digit"):
        for src in sources:
            e = ex3[(src, k)]
            if e:
                pick = rng.sample(e, min(10, len(e)))
                md.append(f"* {src}, {k}, runs of exactly 3: " + " ∣ ".join(short(x, 30) for x in pick))
    md.append("")


def boilerplate_section(sources: dict[str, list], md: list[str]) -> None:
    md.append("## Boilerplate on non-news text (false positives)\n")
    md.append("Neither source is news, so every line the boilerplate rules drop or strip here is a false positive. "
              "(No real news text is available to this benchmark: the rules' recall is covered by the unit tests "
              "only.)\n")
    for src, docs in sources.items():
        dropped, stripped = [], []
        for d in docs:
            for line in d[2].split("\n"):
                if F.is_boilerplate(line):
                    dropped.append(line)
                elif F.BYLINE.match(line):
                    stripped.append(line)
        md.append(f"* {src}: {len(dropped):,} lines dropped, {len(stripped):,} bylines stripped")
        for line in (dropped + stripped)[:15]:
            md.append(f"  * {short(line)}")
    md.append("")


def pii_section(sources: dict[str, list], md: list[str]) -> None:
    md.append("## PII\n")
    md.append("Matches per kind on the raw documents (`replace_pii`), then a sample of every match for precision "
              "reading, masked (`⟦...⟧`, digits of the context as `#`). The guards' counts show what the patterns "
              "refuse on purpose.\n")
    kinds = list(P.PLACEHOLDERS)
    md.append("| source | documents with PII | " + " | ".join(kinds) + " |\n|---|---:|" + "---:|" * len(kinds))
    per_src = {}
    for src, docs in sources.items():
        tot: collections.Counter = collections.Counter()
        ndocs = 0
        for d in docs:
            _, c = P.replace_pii(d[2])
            if c:
                ndocs += 1
                tot.update(c)
        per_src[src] = tot
        md.append(f"| {src} | {ndocs:,} | " + " | ".join(f"{tot.get('pii_' + k, 0):,}" for k in kinds) + " |")
    md.append("")
    # the matches themselves: rerun each kind's regex the way replace_pii applies it (same order)
    rng = random.Random(SEED)
    for src, docs in sources.items():
        found: dict[str, list[str]] = collections.defaultdict(list)
        for d in docs:
            t = d[2]
            if "@" not in t and not P.has_digit_run(t):
                continue
            for m in P.RRN.finditer(t):
                if P.valid_rrn_date(*m.group(1, 2, 3, 4)):
                    found["rrn"].append(masked_context(t, *m.span()))
            t2 = P.RRN.sub(lambda m: P.PLACEHOLDERS["rrn"] if P.valid_rrn_date(*m.group(1, 2, 3, 4))
                            else m.group(), t)
            for m in P.PHONE.finditer(t2):
                found["phone"].append(masked_context(t2, *m.span()))
            t3 = P.PHONE.sub(P.PLACEHOLDERS["phone"], t2)
            for m in P.EMAIL.finditer(t3):
                if m.group(1).lower() not in P.DOC_DOMAINS:
                    found["email"].append(masked_context(t3, *m.span()))
            t4 = P.EMAIL.sub(lambda m: m.group() if m.group(1).lower() in P.DOC_DOMAINS
                              else P.PLACEHOLDERS["email"], t3)
            for m in P.ACCOUNT.finditer(t4):
                if P.account_digits_ok(m.group(1)):
                    found["account"].append(masked_context(t4, *m.span(1)))
        for k in kinds:
            got = found[k]
            if got:
                md.append(f"**{src} — {k}** ({len(got)} matches; sample of {min(25, len(got))})\n")
                for x in rng.sample(got, min(25, len(got))):
                    md.append(f"* {x}")
                md.append("")

    md.append("### Guards\n")
    rrn_shape = re.compile(r"(?<![0-9])\d{6} ?- ?\d{7}(?![0-9])")
    biz = re.compile(r"(?<![0-9A-Za-z.+\-])1[568]\d{2}-\d{4}(?![0-9]|-[0-9])")
    acct_shape = re.compile(r"(?<![0-9\-])(\d{2,6}(?:-\d{2,7}){1,4})(?![0-9]|-[0-9])")
    for src, docs in sources.items():
        n_rrn = n_biz = n_years = n_acct = n_doc_email = n_place = 0
        ex_biz, ex_acct = [], []
        for d in docs:
            t = d[2]
            n_rrn += len(rrn_shape.findall(t))
            for m in biz.finditer(t):
                n_biz += 1
                n_years += _is_year_range(m.group())
                if len(ex_biz) < 200:
                    ex_biz.append(masked_context(t, *m.span()))
            t3 = P.replace_pii(t)[0]
            for m in acct_shape.finditer(t3):
                if P.account_digits_ok(m.group(1)):
                    n_acct += 1
                    if len(ex_acct) < 200:
                        ex_acct.append(short(t3[max(0, m.start() - 14):m.end() + 4], 60))
            n_doc_email += sum(1 for m in P.EMAIL.finditer(t) if m.group(1).lower() in P.DOC_DOMAINS)
            n_place += sum(t.count(v) for v in P.PLACEHOLDERS.values())
        md.append(f"* {src}: RRN-shaped `\\d{{6}}-\\d{{7}}` strings {n_rrn:,}; business-number-shaped "
                  f"`1[568]xx-xxxx` strings (not replaced) {n_biz:,}, of which year ranges {n_years:,}; "
                  "account-shaped numbers left because no banking "
                  f"word precedes them {n_acct:,}; e-mails at example.com/.org/.net left {n_doc_email:,}; "
                  f"placeholder tokens already in the raw text {n_place:,}")
        if ex_biz:
            md.append("  * business-number-shaped, sample: " + " ∣ ".join(rng.sample(ex_biz, min(8, len(ex_biz)))))
            md.append("  * business-number-shaped, all that are not a year range: " + " ∣ ".join(
                x for x in _not_year_ranges(docs, biz)))
        if ex_acct:
            md.append("  * account-shaped without context: " + " ∣ ".join(rng.sample(ex_acct, min(10, len(ex_acct)))))
    # the RRN date test on random strings of the same shape
    r = random.Random(SEED)
    trials = 100_000
    ok = 0
    for _ in range(trials):
        s = f"{r.randrange(10 ** 6):06d}-{r.randrange(10 ** 7):07d}"
        if P.RRN.fullmatch(s) and P.valid_rrn_date(s[0:2], s[2:4], s[4:6], s[7]):
            ok += 1
    md.append(f"* RRN date/gender test on {trials:,} random `\\d{{6}}-\\d{{7}}` strings: {ok:,} accepted "
              f"({100 * ok / trials:.2f} %), {100 - 100 * ok / trials:.2f} % rejected")
    md.append("")


def kss_section(results: dict, md: list[str]) -> None:
    """Placeholders must survive the stage's sentence splitter whole."""
    from koroberta.corpus.steps import init_kss, split_lines

    docs = []
    for key in (("web", "reviews"), ("web", "kowiki")):
        for d, new in results[key]["kept"]:
            if any(v in new for v in P.PLACEHOLDERS.values()):
                docs.append(new)
    docs = docs[:300]
    init_kss()
    bad = 0
    placeholders = 0
    for t in docs:
        sents = split_lines(t.split("\n"), "punct")
        for v in P.PLACEHOLDERS.values():
            want = t.count(v)
            placeholders += want
            if sum(s.count(v) for s in sents) != want:
                bad += 1
    md.append("## Placeholders through kss\n")
    md.append(f"{len(docs)} web-profile documents holding placeholders ({placeholders} placeholders) split with the "
              f"stage's `split_lines(..., 'punct')`: {bad} placeholders broken across sentences.\n")


def not_adopted_section(sources: dict[str, list], feats: dict, md: list[str], kiwi_sample: int) -> None:
    md.append("## Measured and not adopted\n")
    # FineWeb-2's stopword rule (>= 2 of 21 stopwords) on whitespace words: word-final particle/ending syllables
    final = set("의다이는에을한은를고서가로인")
    strip = ".,!?;:\"')』」》〉…~"
    md.append("### FineWeb-2 stopwords on whitespace words\n")
    md.append("FineWeb-2 keeps a document with ≥ 2 of its 21 Korean stopwords (의 다 이 는 에 을 한 년 하 은 를 했 고 "
              "에서 가 있 으로 인 월 로 되, Kiwi morphemes). On whitespace words the nearest equivalent is a word ending "
              "in one of 의 다 이 는 에 을 한 은 를 고 서 가 로 인.\n")
    for src in sources:
        texts = feats[src]["text"]
        for mw in (5, 10, 20):
            cand = [t for t in texts if len(t.split()) >= mw]
            fail = []
            for t in cand:
                n = sum(1 for w in t.split() if w.rstrip(strip)[-1:] in final)
                if n < 2:
                    fail.append(t)
            also = sum(1 for t in fail if F.quality_reason(t))
            md.append(f"* {src}, documents of ≥ {mw} words: {len(fail):,} of {len(cand):,} "
                      f"({100 * len(fail) / max(1, len(cand)):.2f} %) have < 2; {also:,} of those are dropped by the "
                      f"adopted filters anyway")
            if mw == 10 and fail:
                rng = random.Random(SEED)
                md.append("  * sample: " + " ∣ ".join(short(t, 50) for t in rng.sample(fail, min(8, len(fail)))))
    md.append("")
    if kiwi_sample <= 0:
        return
    try:
        from kiwipiepy import Kiwi
    except ImportError:
        md.append("(kiwipiepy not installed: the morpheme comparison is skipped)\n")
        return
    kiwi = Kiwi(num_workers=-1)
    stop = {"의", "다", "이", "는", "에", "을", "한", "년", "하", "은", "를", "했", "고", "에서", "가", "있", "으로",
            "인", "월", "로", "되"}
    top = ((2, 0.282), (3, 0.228), (4, 0.185))
    dup = ((5, 0.201), (6, 0.184), (7, 0.168), (8, 0.154), (9, 0.14), (10, 0.127))

    def fineweb2(t: str) -> str:
        words = [tk.form for tk in kiwi.tokenize(t)]
        if sum(1 for w in words if w in stop) < 2:
            return "stopwords"
        size = len(t)
        for n, thr in top:
            grams = [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]
            if grams:
                g, c = collections.Counter(grams).most_common(1)[0]
                if len(g) * c / size > thr:
                    return "top_n_gram"
        for n, thr in dup:
            seen: set[str] = set()
            rep = i = 0
            while i < len(words) - n + 1:
                g = " ".join(words[i:i + n])
                if g in seen:
                    rep += len(g)
                    i += n
                else:
                    seen.add(g)
                    i += 1
            if rep / size > thr:
                return "dup_n_gram"
        return ""

    md.append(f"### FineWeb-2's own Korean rules on Kiwi morphemes (sample)\n")
    md.append("kiwipiepy morphemes (benchmark only; the pipeline does not need it), FineWeb-2's `kor_Hang` thresholds "
              "exactly, on a seeded sample of the texts the quality filters see:\n")
    md.append("| source | sample | stopwords | top_n_gram | dup_n_gram | dropped by FineWeb-2 | dropped by ours |\n"
              "|---|---:|---:|---:|---:|---:|---:|")
    rng = random.Random(SEED)
    groups = []
    for src in sources:
        texts = feats[src]["text"]
        if src == "reviews":
            groups.append((src, texts, kiwi_sample))
        else:
            groups.append((src, texts, max(1, kiwi_sample // 10)))
            groups.append((f"{src} ≥ 1,000 characters", [t for t in texts if len(t) >= 1000],
                           max(1, kiwi_sample // 20)))
    for label, texts, k in groups:
        sample = rng.sample(texts, min(k, len(texts)))
        if not sample:
            continue
        c = collections.Counter(fineweb2(t) for t in sample)
        ours = sum(1 for t in sample if F.quality_reason(t))
        n = len(sample)
        fw = n - c[""]
        md.append(f"| {label} | {n:,} | {c['stopwords']:,} | {c['top_n_gram']:,} | {c['dup_n_gram']:,} | "
                  f"{fw:,} ({100 * fw / n:.1f} %) | {ours:,} ({100 * ours / n:.1f} %) |")
    md.append("\nThe rules are checked in that order (first failure counted). datatrove's top-n-gram measure is the "
              "most frequent n-gram's characters × its count / text length, counted even when it occurs once — on a "
              "short text any single n-gram is a large share, so the rule cannot be applied to reviews; its stopword "
              "rule also fails short reviews. These are the length effects the adopted filters avoid.\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kowiki", type=Path, required=True, help="WikiExtractor text (.txt or .txt.xz)")
    ap.add_argument("--reviews", type=Path, required=True, help="NSMC-format TSV: id, document, label, with header")
    ap.add_argument("--max-docs", type=int, default=0, help="documents per source (0 = all)")
    ap.add_argument("--kiwi-sample", type=int, default=3000,
                    help="reviews for the Kiwi comparison (kowiki gets a tenth); 0 skips it")
    ap.add_argument("--no-kss", action="store_true", help="skip the kss check (saves the kss import)")
    ap.add_argument("--out", type=Path, required=True, help="directory for corpus_filters.md")
    a = ap.parse_args()
    t_start = time.time()
    limit = a.max_docs or None
    sources = {"kowiki": load_kowiki(a.kowiki, limit), "reviews": load_reviews(a.reviews, limit)}
    md = ["# Korean quality filters and PII: measurements (issue 22)\n",
          "Generated by `bench/corpus_filters.py`; do not edit above the hand-written line.\n",
          "```\n.venv/bin/python bench/corpus_filters.py --kowiki " + str(a.kowiki) + " --reviews " + str(a.reviews)
          + (f" --max-docs {a.max_docs}" if a.max_docs else "")
          + f" --kiwi-sample {a.kiwi_sample} --out {a.out}\n```\n",
          "Data (real text, nothing synthesized):\n",
          f"* kowiki: `{a.kowiki.name}` (sha256 `{sha256(a.kowiki)[:16]}…`), WikiExtractor output of real Korean "
          f"Wikipedia articles, {len(sources['kowiki']):,} documents ({sum(1 for d in sources['kowiki'] if d[2]):,} "
          f"non-empty after the clean step), {sum(len(d[2]) for d in sources['kowiki']) / 1e6:.1f} M characters",
          f"* reviews: `{a.reviews.name}` (sha256 `{sha256(a.reviews)[:16]}…`), NSMC-format movie reviews rebuilt "
          f"from the raw Naver crawl, {len(sources['reviews']):,} reviews, each one document, "
          f"{sum(len(d[2]) for d in sources['reviews']) / 1e6:.1f} M characters\n"]
    results = run_profiles(sources, md)
    feats = thresholds(sources, md)
    min_chars_section(sources, md)
    samples_section(results, sources, md)
    repeats_section(sources, md)
    boilerplate_section(sources, md)
    pii_section(sources, md)
    if not a.no_kss:
        kss_section(results, md)
    not_adopted_section(sources, feats, md, a.kiwi_sample)
    md.append(f"Total wall time of this benchmark: {time.time() - t_start:.0f} s.\n")
    a.out.mkdir(parents=True, exist_ok=True)
    out = a.out / "corpus_filters.md"
    tail = ""
    if out.exists():
        old = out.read_text(encoding="utf-8")
        if KEEP_MARK in old:
            tail = old[old.index(KEEP_MARK):]
    out.write_text("\n".join(md) + "\n" + (tail or KEEP_MARK + "\n"), encoding="utf-8")
    print(f"wrote {out} in {time.time() - t_start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
