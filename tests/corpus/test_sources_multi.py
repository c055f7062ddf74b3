"""Several sources into one corpus (top-level ``sources:``): three kinds -- the tiny kowiki dump, a plain-text file
with ``documents: line`` and a Hugging Face Parquet dataset -- with planted exact and near duplicates across
sources, a document copied from a decontamination file, boilerplate and PII in the web sources, and weights
0.5 / 1 / 2. Each is handled and counted per source; the weights give exactly the train counts they imply. The
single-source run's bytes are covered by tests/corpus/test_build.py and tests/test_identity.py."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from koroberta.artifacts import SPLITS, read_manifest  # noqa: E402
from koroberta.corpus.build import build_corpus_sources  # noqa: E402
from koroberta.corpus.config import CorpusConfig, resolve_sources  # noqa: E402
from koroberta.corpus.steps import train_copies  # noqa: E402
from koroberta.errors import ConfigError, InputError  # noqa: E402
from koroberta.pipeline import PipelineConfig  # noqa: E402

WEIGHTS = {"kowiki": 0.5, "reviews": 1.0, "news": 2.0}


def _words(rng: random.Random, n: int) -> str:
    """n random Hangul words: documents that share no template, so near-dedup finds only the planted pair."""
    return " ".join("".join(chr(rng.randrange(0xAC00, 0xD7A4)) for _ in range(rng.randrange(2, 5)))
                    for _ in range(n))


RNG = random.Random(7)
SHARED = _words(RNG, 12) + " 두 출처에 똑같이 들어 있는 리뷰다."  # exact duplicate: reviews (kept) and news
NEAR = _words(RNG, 60)  # ~200 characters; news holds a copy with ~3 % of its characters changed
EVAL = "이 영화는 처음부터 끝까지 긴장감이 넘치고 배우들의 연기가 정말 훌륭했다"  # in the decontamination file


def _near_copy(text: str, frac: float = 0.03) -> str:
    rng = random.Random(3)
    chars = list(text)
    idx = [i for i, c in enumerate(chars) if c != " "]
    for i in rng.sample(idx, max(1, round(frac * len(chars)))):
        chars[i] = chr(0xAC00 + (ord(chars[i]) - 0xAC00 + 1) % 11172)
    return "".join(chars)


REVIEWS = [_words(RNG, 8) + " 재밌게 봤다." for _ in range(40)]
REVIEWS[3] = SHARED
REVIEWS[5] = NEAR
REVIEWS[7] = _words(RNG, 6) + " 문의는 010-1234-5678 로 연락 주세요."  # PII: replaced, counted
REVIEWS[9] = "ㅋㅋ"  # < 10 characters: too_short under the web profile

NEWS = [{"id": f"n{k}", "title": f"기사 {k}", "text": _words(RNG, 30) + "\n" + _words(RNG, 20)} for k in range(30)]
NEWS[2]["text"] = SHARED  # exact duplicate of reviews' document (the higher-priority source)
NEWS[4]["text"] = _near_copy(NEAR)  # near duplicate of reviews' document
NEWS[6]["text"] = _words(RNG, 10) + " " + EVAL + " 라는 평이 많았다."  # contains an evaluation text
NEWS[8]["text"] = _words(RNG, 25) + "\n무단전재 및 재배포 금지"  # boilerplate footer line: removed, counted


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_dump) -> dict:
    root = tmp_path_factory.mktemp("multi")
    (root / "reviews.txt").write_text("\n".join(REVIEWS) + "\n", encoding="utf-8")
    pq.write_table(pa.table({"id": [d["id"] for d in NEWS], "title": [d["title"] for d in NEWS],
                             "text": [d["text"] for d in NEWS]}), root / "news.parquet")
    (root / "eval.tsv").write_text(f"id\tdocument\tlabel\n1\t{EVAL}\t1\n", encoding="utf-8")
    items = [{"name": "kowiki", "path": str(tiny_dump), "weight": WEIGHTS["kowiki"]},
             {"name": "reviews", "path": str(root / "reviews.txt"), "documents": "line"},
             {"name": "news", "path": str(root / "news.parquet"), "weight": WEIGHTS["news"]}]
    return {"root": root, "items": items, "decontaminate": [str(root / "eval.tsv")]}


def _config(inputs: dict, tmp: Path, **top) -> PipelineConfig:
    import yaml

    p = tmp / "run.yaml"
    p.write_text(yaml.safe_dump({"workdir": str(tmp / "run"), "sources": inputs["items"],
                                 "decontaminate": inputs["decontaminate"],
                                 "corpus": {"valid_fraction": 0.1, "test_fraction": 0.1, "keep_intermediates": True},
                                 **top},
                                allow_unicode=True), encoding="utf-8")
    return PipelineConfig.load(p)


@pytest.fixture(scope="module")
def built(inputs, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("out")
    cfg = _config(inputs, tmp)
    build_corpus_sources(cfg.corpus, cfg.source_paths(), tmp / "corpus", decontaminate=cfg.decontaminate)
    return tmp / "corpus"


def test_config_resolves_profiles_and_identity(inputs, tmp_path):
    cfg = _config(inputs, tmp_path)
    prof = {s["name"]: s["profile"]["name"] for s in cfg.corpus.sources}
    assert prof == {"kowiki": "wiki", "reviews": "web", "news": "web"}  # the default by kind
    assert cfg.corpus.near_dedup is None and cfg.corpus.near_dedup_on  # null = on with `sources:`
    ident = cfg.corpus.identity()
    assert ident["near_dedup"] is True and [s["name"] for s in ident["sources"]] == list(WEIGHTS)
    assert all("path" not in s for s in ident["sources"])  # the path's content is an input, never identity
    wiki = cfg.corpus.sources[0]["profile"]
    assert wiki["min_chars"] == cfg.corpus.min_chars  # the wiki profile takes corpus.min_chars
    # the stage inputs: one per source and decontamination file, fingerprinted by content
    from koroberta.pipeline import STEPS

    assert sorted(STEPS[0].inputs(cfg, tmp_path)) == ["decontaminate.0", "source.kowiki", "source.news",
                                                      "source.reviews"]


def test_each_source_is_filtered_and_its_drops_written(built):
    ex = read_manifest(built / "extract-reviews")
    assert ex["stats"]["dropped"].get("too_short") == 1
    assert ex["stats"]["edits"].get("pii_phone") == 1
    excluded = [json.loads(l) for l in (built / "extract-reviews" / "excluded.jsonl").read_text().splitlines()]
    assert [(e["id"], e["reason"], e["text"]) for e in excluded] == [("reviews/reviews.txt:10", "too_short", "ㅋㅋ")]
    news = read_manifest(built / "extract-news")["stats"]
    assert news["edits"].get("boilerplate_lines") == 1
    docs = [json.loads(l) for l in (built / "extract-news" / "docs.jsonl").read_text().splitlines()]
    assert all(d["source"] == "news" and d["id"].startswith("news/") for d in docs)
    assert not any("무단전재" in d["text"] for d in docs)
    wiki = read_manifest(built / "extract-kowiki")["stats"]
    assert wiki["profile"] == "wiki" and wiki["documents"] > 0


def test_merge_dedups_across_sources_and_decontaminates(built):
    st = read_manifest(built / "clean")["stats"]
    per = st["sources"]
    assert per["news"]["duplicates_of"] == {"reviews": 1}
    assert per["news"]["near_duplicates_of"] == {"reviews": 1}
    assert per["news"]["decontaminated"] == 1 and per["reviews"]["decontaminated"] == 0
    assert per["reviews"]["pii_replaced"] == 1
    assert st["dropped"]["duplicate"] == 1 and st["dropped"]["near_duplicate"] == 1
    excluded = [json.loads(l) for l in (built / "clean" / "excluded.jsonl").read_text().splitlines()]
    assert {(e["id"], e["reason"]) for e in excluded} == {
        ("news/n2", "duplicate"), ("news/n4", "near_duplicate"), ("news/n6", "decontaminated")}
    assert next(e for e in excluded if e["reason"] == "decontaminated")["matched"].endswith("eval.tsv:2")
    kept = [json.loads(l) for l in (built / "clean" / "docs.jsonl").read_text().splitlines()]
    assert [d["source"] for d in kept] == sorted((d["source"] for d in kept), key=list(WEIGHTS).index)  # priority
    assert all("010-1234-5678" not in d["text"] for d in kept)


def test_weights_give_exactly_the_train_counts(built):
    st = read_manifest(built / "split")["stats"]
    total = 0
    for name, w in WEIGHTS.items():
        ps = st["sources"][name]
        n = ps["documents"]["train"]
        assert n > 0
        assert ps["train_written"] == math.floor(w * n + 0.5), name
        total += ps["train_written"]
    assert st["documents"]["train"] == total
    assert (built / "split" / "train.txt").read_text(encoding="utf-8").count("\n\n") == total - 1
    rows = pq.read_table(built / "split" / "hf" / "train.parquet").to_pydict()
    assert len(rows["id"]) == total
    for name in WEIGHTS:
        assert rows["source"].count(name) == st["sources"][name]["train_written"]
    # valid/test are never weighted: every document at most once
    for s in ("valid", "test"):
        ids = pq.read_table(built / "split" / "hf" / f"{s}.parquet").column("id").to_pylist() \
            if (built / "split" / "hf" / f"{s}.parquet").exists() else []
        assert len(ids) == len(set(ids)) == sum(st["sources"][n]["documents"][s] for n in WEIGHTS)


def test_each_source_has_its_own_valid_file_and_report_row(built):
    """valid_<name>.txt holds exactly the source's valid documents, in valid.txt's order (the Parquet rows say which
    document is whose); report.md has one row per source with its counts."""
    split = built / "split"
    rows = pq.read_table(split / "hf" / "valid.parquet").to_pydict()
    docs = [d for d in (split / "valid.txt").read_text(encoding="utf-8").split("\n\n") if d]
    assert len(docs) == len(rows["id"])
    st = read_manifest(split)["stats"]
    for name in WEIGHTS:
        mine = [d.rstrip("\n") for d, src in zip(docs, rows["source"]) if src == name]
        text = (split / f"valid_{name}.txt").read_text(encoding="utf-8")
        got = [d.rstrip("\n") for d in text.split("\n\n") if d]
        assert got == mine and len(got) == st["sources"][name]["documents"]["valid"], name
    assert sorted(p.name for p in split.glob("valid_*.txt")) == sorted(f"valid_{n}.txt" for n in WEIGHTS)
    report = (split / "report.md").read_text(encoding="utf-8")
    news = next(line for line in report.splitlines() if line.startswith("| news |"))
    cells = [c.strip() for c in news.strip("|").split("|")]
    clean = read_manifest(built / "clean")["stats"]["sources"]["news"]
    assert len(cells) == 14 and cells[1] == "web" and cells[3] == f"{clean['kept']['documents']:,}"
    assert int(cells[2]) == clean["kept"]["documents"] + sum(clean["dropped"].values())
    assert cells[8] == "0" and cells[9:12] == [str(st["sources"]["news"]["documents"][s]) for s in SPLITS]
    assert cells[5:8] == ["1", "1", "1"]  # duplicate, near-duplicate, decontaminated: one each, planted
    assert cells[-2:] == ["2", f"{st['sources']['news']['train_written']:,}"]
    assert "| decontaminated | 0 | 0 | 1 |" in report


def test_train_copies_definition():
    assert train_copies(7, 0.5) == (0, 4)  # 3.5 rounds half up
    assert train_copies(10, 2.0) == (2, 0)
    assert train_copies(3, 1.5) == (1, 2)
    assert train_copies(5, 0.0) == (0, 0)
    assert train_copies(0, 3.0) == (0, 0)


def test_rerun_is_complete(inputs, built, tmp_path):
    before = {p: p.read_bytes() for p in (built / "split").rglob("*") if p.is_file()}
    cfg = _config(inputs, tmp_path)
    build_corpus_sources(cfg.corpus, cfg.source_paths(), built, decontaminate=cfg.decontaminate)
    assert {p: p.read_bytes() for p in (built / "split").rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("change,message", [
    (lambda items: items[1].update(profile="webb"), "source 'reviews': unknown filter profile 'webb'"),
    (lambda items: items[2].update(weight=-1), "source 'news': weight -1 is negative"),
    (lambda items: items[2].update(name="reviews"), "two sources are named 'reviews'"),
    (lambda items: items[0].update(name="ko/wiki"), "name 'ko/wiki' contains '/'"),
    (lambda items: items[0].update(name="a:b"), "contains ':'"),
    (lambda items: items[0].update(name="a,b"), "contains ','"),
    (lambda items: items[0].update(name=""), "`name` is missing or empty"),
])
def test_bad_sources_are_one_line(inputs, tmp_path, change, message):
    items = [dict(i) for i in inputs["items"]]
    change(items)
    with pytest.raises(ConfigError, match=message) as e:
        _config({**inputs, "items": items}, tmp_path)
    assert "\n" not in str(e.value) and "fix:" in str(e.value)


def test_source_and_sources_together_is_refused(inputs, tmp_path):
    with pytest.raises(ConfigError, match="either `source:` or `sources:`"):
        _config(inputs, tmp_path, source="x.txt")


def test_missing_path_and_bad_decontamination_file(inputs, tmp_path):
    items = [dict(i) for i in inputs["items"]]
    items[1]["path"] = str(tmp_path / "nope.txt")
    cfg = _config({**inputs, "items": items}, tmp_path)  # loads: a path may appear later
    with pytest.raises(InputError, match="source 'reviews': path not found") as e:
        build_corpus_sources(cfg.corpus, cfg.source_paths(), tmp_path / "c", decontaminate=cfg.decontaminate)
    assert "\n" not in str(e.value)
    bad = tmp_path / "bad.json"
    bad.write_text('[{"label": 1}]', encoding="utf-8")
    cfg = _config({**inputs, "decontaminate": [str(bad)]}, tmp_path)
    with pytest.raises(InputError, match="bad.json") as e:
        build_corpus_sources(cfg.corpus, cfg.source_paths(), tmp_path / "c", decontaminate=cfg.decontaminate)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "c").exists()  # refused before any work


def test_nsmc_tsv_is_a_source_kind(tmp_path):
    from koroberta.corpus.sources import ReadStats, detect_format, iter_source

    p = tmp_path / "r.tsv"
    p.write_text("id\tdocument\tlabel\n11\t재밌다 정말로\t1\n12\t별로였다\t0\n", encoding="utf-8")
    assert detect_format(p) == "nsmc"
    assert [(r.id, r.text) for r in iter_source(p, ReadStats())] == [("11", "재밌다 정말로"), ("12", "별로였다")]
    assert resolve_sources([{"name": "r", "path": str(p)}], min_chars=100, kinds={str(p): "nsmc"})[0]["profile"][
        "name"] == "web"


def test_corpus_build_cli_takes_a_config_with_sources(inputs, tmp_path):
    import yaml

    cfg = tmp_path / "own.yaml"
    cfg.write_text(yaml.safe_dump({"sources": inputs["items"][1:], "corpus": {"valid_fraction": 0.1,
                                                                              "test_fraction": 0.1}},
                                  allow_unicode=True), encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "koroberta", "corpus", "build", "--config", str(cfg),
                        str(tmp_path / "c"), "--workers", "1"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "c" / "split" / "train.txt").is_file()
    # SOURCE as well as `sources:` is ambiguous: refused in one line, naming the command without SOURCE
    r = subprocess.run([sys.executable, "-m", "koroberta", "corpus", "extract", "x", str(tmp_path / "d"),
                        "--config", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 2 and f"SOURCE x given, and {cfg} lists `sources:`" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
