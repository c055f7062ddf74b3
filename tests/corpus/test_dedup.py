"""koroberta.corpus.dedup: exact keys across sources, MinHash near dedup (datasketch), determinism."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from koroberta.corpus.dedup import ExactDedup, NearDedup, dedup_key, normalize

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REPO = Path(__file__).resolve().parents[2]


def kowiki_docs() -> list[str]:
    """The 80 real kowiki documents of the fixture (one paragraph per line, a blank line between documents)."""
    text = (FIXTURES / "kowiki-docs.txt").read_text(encoding="utf-8")
    return [d.strip() for d in text.split("\n\n") if d.strip()]


def edit(text: str, rate: float, seed: int) -> str:
    """``rate`` of the characters edited at random (substitution / insertion / deletion), seeded."""
    rng = random.Random(seed)
    chars = list(text)
    pool = [c for c in text if not c.isspace()]
    for _ in range(max(1, round(rate * len(text)))):
        op = rng.randrange(3)
        if op == 0:
            chars[rng.randrange(len(chars))] = rng.choice(pool)
        elif op == 1:
            chars.insert(rng.randrange(len(chars) + 1), rng.choice(pool))
        else:
            del chars[rng.randrange(len(chars))]
    return "".join(chars)


# -- normalisation and exact keys --------------------------------------------------------------------------------------
def test_normalize_folds_width_case_punctuation_and_space():
    assert normalize("  Ｈｅｌｌｏ,\tWORLD!!  재밌다~^^ ") == "hello world 재밌다"
    assert normalize("1.5") == "1 5" != normalize("15")  # a mark becomes a space: 1.5 and 15 stay apart
    assert normalize("...") == "..." and normalize("!!!") == "!!!"  # all marks: kept, not one empty key


def test_dedup_key_is_a_fixed_size_digest():
    k = dedup_key("진짜 최고!!")
    assert len(k) == 32 and int(k, 16) >= 0
    assert k == dedup_key("진짜  최고") == dedup_key("진짜 최고~") == dedup_key("진짜 최고.")
    assert k != dedup_key("진짜 최악") and dedup_key("...") != dedup_key("!!!")


def test_exact_dedup_across_sources_keeps_the_first():
    ex = ExactDedup()
    assert ex.seen(dedup_key("정말 재밌는 영화였다."), "w1", "kowiki") is None
    assert ex.seen(dedup_key("다른 문서"), "w2", "kowiki") is None
    assert ex.seen(dedup_key("정말 재밌는 영화였다!!"), "r7", "reviews") == ("kowiki", "w1")
    assert ex.seen(dedup_key("정말  재밌는 영화였다"), "n3", "news") == ("kowiki", "w1")  # still the first
    assert len(ex) == 2


def test_exact_dedup_takes_keys_not_text():
    with pytest.raises(ValueError, match="dedup_key"):
        ExactDedup().seen("정말 재밌는 영화였다.", "w1", "kowiki")


# -- near dedup --------------------------------------------------------------------------------------------------------
def test_near_duplicates_at_3_percent_edits_caught_distinct_not():
    docs = kowiki_docs()[:40]
    nd = NearDedup()
    for i, d in enumerate(docs):
        assert nd.match(f"w{i}", "kowiki", d) is None, f"distinct kowiki document {i} called a duplicate"
    assert len(nd) == len(docs)
    found = [nd.match(f"c{i}", "news", edit(d, 0.03, seed=i)) for i, d in enumerate(docs)]
    right = sum(hit == ("kowiki", f"w{i}") for i, hit in enumerate(found))
    # measured recall at 3 % edits: 96.7 % of 1,000 real articles (bench/results/dedup.md); 40 here
    assert right >= 36, found
    assert all(hit is None or hit == ("kowiki", f"w{i}") for i, hit in enumerate(found))  # never the wrong one


def test_near_dedup_first_come_survives_a_chain():
    base = kowiki_docs()[0]
    a1 = edit(base, 0.01, seed=1)
    a2 = edit(a1, 0.01, seed=2)
    nd = NearDedup()
    assert nd.match("w0", "kowiki", base) is None
    assert nd.match("r1", "reviews", a1) == ("kowiki", "w0")
    assert nd.match("r2", "reviews", a2) == ("kowiki", "w0")  # a duplicate is never added: matches the survivor
    assert len(nd) == 1


def test_find_does_not_add():
    d = kowiki_docs()[3]
    nd = NearDedup()
    assert nd.find(d) is None and len(nd) == 0
    assert nd.match("w3", "kowiki", d) is None and nd.find(edit(d, 0.01, seed=5)) == ("kowiki", "w3")


def test_short_texts_skip_near_dedup_but_not_exact():
    nd = NearDedup()
    s = "정말 재밌다 최고"  # 9 normalised characters < min_chars
    assert len(normalize(s)) < nd.min_chars
    assert nd.match("r1", "reviews", s) is None and nd.match("r2", "reviews", s) is None
    assert len(nd) == 0 and nd.minhash(s) is None
    ex = ExactDedup()
    assert ex.seen(dedup_key(s), "r1", "reviews") is None
    assert ex.seen(dedup_key(s + "!"), "r2", "reviews") == ("reviews", "r1")


def test_parameters_are_checked():
    with pytest.raises(ValueError):
        NearDedup(shingle="morph")
    with pytest.raises(ValueError):
        NearDedup(threshold=0)
    nd = NearDedup(shingle="word", n=2, min_chars=10)
    doc = kowiki_docs()[5]
    assert nd.match("a", "s", doc) is None and nd.match("b", "s", doc + " 끝.") == ("s", "a")


_DETERMINISM = r"""
import importlib.util, json, random, sys
from koroberta.corpus.dedup import ExactDedup, NearDedup, dedup_key
from koroberta.corpus.decontaminate import Decontaminator, EvalItem
spec = importlib.util.spec_from_file_location("test_dedup_helpers", sys.argv[1])  # this file: edit, kowiki_docs
helpers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(helpers)
edit, kowiki_docs = helpers.edit, helpers.kowiki_docs
docs = kowiki_docs()
rng = random.Random(7)
stream = []
for i, d in enumerate(docs):
    stream.append((f"w{i}", d))
    if i % 3 == 0:
        stream.append((f"c{i}", edit(d, rng.choice([0.01, 0.03, 0.06, 0.1]), seed=i)))
ex, nd = ExactDedup(), NearDedup()
out = []
for doc, text in stream:
    out.append([doc, ex.seen(dedup_key(text), doc, "s"), nd.match(doc, "s", text),
                nd.minhash(text).hashvalues[:4].tolist()])
items = [EvalItem("eval.txt", i + 1, line) for i, line in enumerate(d.split("\n")[1] for d in docs[:30])]
dc = Decontaminator(items)
out.append([getattr(dc.match(t), "line", None) for _, t in stream])
print(json.dumps(out, ensure_ascii=False))
"""


@pytest.mark.slow
def test_results_do_not_depend_on_pythonhashseed():
    runs = []
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        p = subprocess.run([sys.executable, "-c", _DETERMINISM, __file__], env=env, capture_output=True,
                           text=True, cwd=REPO, timeout=300)
        assert p.returncode == 0, p.stderr
        runs.append(json.loads(p.stdout))
    assert runs[0] == runs[1]
    assert any(r[2] is not None for r in runs[0][:-1])  # the stream does hold near duplicates
    assert any(x is not None for x in runs[0][-1])  # and documents the decontaminator flags


def test_dedup_memory_is_checked_before_the_merge(monkeypatch, tmp_path):
    """A corpus whose dedup indexes cannot fit is refused in one line before the merge starts, naming the fix;
    one that fits passes and returns the estimate (the measured bytes per document times the documents)."""
    from koroberta.corpus import steps
    from koroberta.corpus.config import CorpusConfig
    from koroberta.corpus.dedup import EXACT_BYTES_PER_DOC, NEAR_BYTES_PER_DOC
    from koroberta.errors import InputError

    cfg = CorpusConfig(near_dedup=True)
    assert steps.memory_limit() > 10 ** 8  # this machine's RAM or its cgroup limit: a number, read for real
    monkeypatch.setattr(steps, "memory_limit", lambda: 16 * 10 ** 9)
    assert steps.check_dedup_memory(cfg, 1000, tmp_path) == 1000 * (EXACT_BYTES_PER_DOC + NEAR_BYTES_PER_DOC)
    with pytest.raises(InputError, match="corpus.near_dedup: false") as e:
        steps.check_dedup_memory(cfg, 3_000_000, tmp_path)
    assert "3,000,000 documents" in str(e.value) and "\n" not in str(e.value)
    # without near dedup the same corpus fits
    assert steps.check_dedup_memory(CorpusConfig(near_dedup=False), 3_000_000, tmp_path) == \
        3_000_000 * EXACT_BYTES_PER_DOC
