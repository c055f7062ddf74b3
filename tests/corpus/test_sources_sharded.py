"""Several sources as the SLURM corpus array runs them (scripts/corpus_array.slurm): ``corpus extract --config
FILE OUT --shard i --num-shards N`` (shard i of every source), ``clean --num-shards N``, ``sentences`` per shard,
``split`` -- byte-identical to ``corpus build --config FILE OUT`` on one machine, for N = 1 and N = 3, every file of
``split/`` and ``clean/`` included; a resubmitted array redoes only the missing shards. Three small sources (a slice
of the tiny dump, a ``documents: line`` text file, a Parquet dataset) with duplicates planted within a source and
across sources, in different shards, so a merge that did not restore source order would keep other documents.
The CLI runs in-process (as tests/corpus/test_source_kinds.py does): a few seconds in all."""

from __future__ import annotations

import bz2
import json
import random
from pathlib import Path

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
yaml = pytest.importorskip("yaml")

from koroberta.artifacts import MANIFEST, MARKER, TIMING, read_manifest  # noqa: E402
from koroberta.cli import main  # noqa: E402

#: pages of tests/fixtures/kowiki-tiny.xml.bz2 (0-based), in dump order
PAGES = (3, 9, 10, 13, 16, 19, 22, 23, 25, 29, 33, 42, 45, 46, 47, 49, 59)
N = 3  # extract shards; the sentence step runs with 2, as an array may (the two steps' counts are independent)
RNG = random.Random(11)


def _words(n: int) -> str:
    return " ".join("".join(chr(RNG.randrange(0xAC00, 0xD7A4)) for _ in range(RNG.randrange(2, 5)))
                    for _ in range(n))


def _near_copy(text: str) -> str:
    """``text`` with ~3 % of its characters changed: MinHash near-dedup's ~70 % threshold finds it."""
    rng = random.Random(5)
    chars = list(text)
    for i in rng.sample([i for i, c in enumerate(chars) if c != " "], max(1, round(0.03 * len(chars)))):
        chars[i] = chr(0xAC00 + (ord(chars[i]) - 0xAC00 + 1) % 11172)
    return "".join(chars)


EVAL = "이 영화는 처음부터 끝까지 긴장감이 넘치고 배우들의 연기가 정말 훌륭했다"
SHARED = _words(12) + " 두 출처에 똑같이 들어 있는 리뷰다."
NEAR = _words(60)
REVIEWS = [_words(8) + " 재밌게 봤다." for _ in range(24)]
REVIEWS[1] = SHARED  # ord 1: shard 1 of 3
REVIEWS[5] = REVIEWS[3]  # a duplicate within the source: ords 3 and 5 lie in shards 0 and 2, the later one goes
REVIEWS[7] = NEAR
REVIEWS[10] = _words(6) + " 문의는 010-1234-5678 로 연락 주세요."  # PII: replaced in the web profile
REVIEWS[13] = "ㅋㅋ"  # too short for the web profile: excluded at extraction
NEWS = [{"id": f"n{k}", "title": f"기사 {k}", "text": _words(25) + "\n" + _words(15)} for k in range(15)]
NEWS[0]["text"] = SHARED  # exact duplicate of a higher-priority source's document
NEWS[4]["text"] = _near_copy(NEAR)  # near duplicate of reviews' document
NEWS[8]["text"] = _words(10) + " " + EVAL + " 라는 평이 많았다."  # holds an evaluation text
NEWS[11]["text"] = _words(20) + "\n무단전재 및 재배포 금지"  # boilerplate footer: an edit, counted per shard


@pytest.fixture(scope="module")
def config(tmp_path_factory, tiny_dump) -> Path:
    root = tmp_path_factory.mktemp("sharded-in")
    # the tiny dump's short pages (kss on its long articles would cost seconds): articles, a redirect, other
    # namespaces, an article too short to keep
    raw = bz2.decompress(tiny_dump.read_bytes()).decode("utf-8")
    head, *pages = raw.split("  <page>")
    dump = root / "kowiki-short.xml.bz2"
    dump.write_bytes(bz2.compress((head + "".join("  <page>" + pages[i] for i in PAGES).split("</mediawiki>")[0]
                                   + "</mediawiki>\n").encode("utf-8")))
    (root / "reviews.txt").write_text("\n".join(REVIEWS) + "\n", encoding="utf-8")
    pq.write_table(pa.table({k: [d[k] for d in NEWS] for k in ("id", "title", "text")}), root / "news.parquet")
    (root / "eval.tsv").write_text(f"id\tdocument\tlabel\n1\t{EVAL}\t1\n", encoding="utf-8")
    cfg = root / "run.yaml"
    cfg.write_text(yaml.safe_dump({
        "workdir": str(root / "run"),
        "sources": [{"name": "kowiki", "path": str(dump), "weight": 0.5},
                    {"name": "reviews", "path": str(root / "reviews.txt"), "documents": "line"},
                    {"name": "news", "path": str(root / "news.parquet"), "weight": 2.0}],
        "decontaminate": [str(root / "eval.tsv")],
        # min_chars on the command line of every step below re-resolves the wiki profile: checks that path too;
        # the intermediates are kept so that clean/ and the shards can be compared byte for byte
        "corpus": {"valid_fraction": 0.2, "test_fraction": 0.2, "keep_intermediates": True}}, allow_unicode=True),
        encoding="utf-8")
    return cfg


def _ok(argv: list) -> None:
    assert main([str(a) for a in argv]) == 0, argv


@pytest.fixture(scope="module")
def reference(config, tmp_path_factory) -> Path:
    """`koroberta corpus build --config FILE OUT` on one machine."""
    out = tmp_path_factory.mktemp("one-machine") / "corpus"
    _ok(["corpus", "build", "--config", config, out, "--workers", "1", "--min-chars", "50"])
    return out


def _array(config: Path, out: Path, n_extract: int, n_sentences: int) -> None:
    """The four steps as the SLURM array's tasks run them (one process each there; in-process here)."""
    opt = ["--config", config]  # each step takes only the options that change its output: min_chars is extract's
    for i in range(n_extract):
        _ok(["corpus", "extract", out, "--shard", i, "--num-shards", n_extract, "--workers", "1", "--min-chars", 50,
             *opt])
    _ok(["corpus", "clean", out, "--num-shards", n_extract, *opt])
    for i in range(n_sentences):
        _ok(["corpus", "sentences", out, "--shard", i, "--num-shards", n_sentences, "--workers", "1", *opt])
    _ok(["corpus", "split", out, "--num-shards", n_sentences, *opt])


def _files(d: Path) -> dict[str, bytes]:
    """Every file of a step directory but its manifest and marker (they name the inputs: the shard directories) and
    its wall-clock timings."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file() and p.name not in (MANIFEST, MARKER, TIMING)}


def _same_as_reference(out: Path, reference: Path) -> None:
    for step in ("clean", "split"):
        got, want = _files(out / step), _files(reference / step)
        assert sorted(got) == sorted(want), step
        for name in want:
            assert got[name] == want[name], f"{step}/{name} differs from the one-machine build"
        # the counts (per source too) the report is made of: the same numbers, in the same order
        assert json.dumps(read_manifest(out / step)["stats"]) == json.dumps(read_manifest(reference / step)["stats"])


def test_planted_cases_span_shards(reference):
    """The fixture does what the byte comparisons rely on: duplicates found across shards and sources."""
    st = read_manifest(reference / "clean")["stats"]["sources"]
    assert st["reviews"]["duplicates_of"] == {"reviews": 1} and st["news"]["duplicates_of"] == {"reviews": 1}
    assert st["news"]["near_duplicates_of"] == {"reviews": 1} and st["news"]["decontaminated"] == 1
    assert st["reviews"]["pii_replaced"] == 1 and st["news"]["edits"].get("boilerplate_lines") == 1
    assert st["kowiki"]["kept"]["documents"] >= 3
    excluded = {e["id"]: e for e in map(json.loads, (reference / "clean/excluded.jsonl").read_text().splitlines())}
    assert excluded["reviews/reviews.txt:6"]["of"] == "reviews/reviews.txt:4"  # ords 5 and 3: shards 2 and 0
    files = {p.name for p in (reference / "split").iterdir()}
    assert {"report.md", "doc_chars.png", "valid_news.txt", "train.txt"} <= files and (reference / "split/hf").is_dir()


def test_three_shards_are_byte_identical_to_one_machine(config, reference, tmp_path):
    out = tmp_path / "corpus"
    _array(config, out, N, 2)
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("extract")) == sorted(
        f"extract-{n}-{i:05d}-of-{N:05d}" for n in ("kowiki", "reviews", "news") for i in range(N))
    # each shard holds the pages with ord % N == i of its source, in order
    ords = [json.loads(l)["ord"] for l in (out / f"extract-reviews-00001-of-{N:05d}/docs.jsonl").open()]
    assert ords and all(o % N == 1 for o in ords) and ords == sorted(ords)
    _same_as_reference(out, reference)


def test_one_shard_is_the_one_machine_run_step_by_step(config, reference, tmp_path):
    """N = 1 through the array's commands: the very extract-<name>/ directories `corpus build` writes (same bytes,
    same completion key), so `corpus build` on the result finds every step complete and rewrites nothing."""
    out = tmp_path / "corpus"
    _array(config, out, 1, 1)
    _same_as_reference(out, reference)
    for name in ("kowiki", "reviews", "news"):
        d, r = out / f"extract-{name}", reference / f"extract-{name}"
        assert _files(d) == _files(r)
        assert read_manifest(d)["identity_sha256"] == read_manifest(r)["identity_sha256"]
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    _ok(["corpus", "build", "--config", config, out, "--workers", "1", "--min-chars", "50"])
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before


def test_resubmitted_array_redoes_only_missing_shards(config, reference, tmp_path, capsys):
    out = tmp_path / "corpus"
    opt = ["--config", config, "--min-chars", "50", "--workers", "1", "--num-shards", N]
    for i in (0, 2):
        _ok(["corpus", "extract", out, "--shard", i, *opt])
    # the merge refuses while a shard is missing, naming the source, the shard and the command that makes it
    capsys.readouterr()  # the extract steps' log lines
    assert main([str(a) for a in ["corpus", "clean", out, "--num-shards", N, "--config", config]]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "source 'kowiki' extract shard(s) incomplete (first: shard 1)" in err
    assert f"koroberta corpus extract --config FILE.yaml OUT_DIR --shard 1 --num-shards {N}" in err
    done = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()}
    for i in range(N):  # the whole array again
        _ok(["corpus", "extract", out, "--shard", i, *opt])
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in done} == done  # shards 0 and 2 not rewritten
    assert all((out / f"extract-{n}-00001-of-{N:05d}" / "_COMPLETE").is_file() for n in ("kowiki", "reviews", "news"))


def test_source_with_a_sources_config_is_one_line(config, tmp_path, capsys):
    for step in ("extract", "build"):
        assert main(["corpus", step, str(config), str(tmp_path / "c"), "--config", str(config)]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert f"SOURCE {config} given, and {config} lists `sources:`" in err
        assert f"fix: koroberta corpus {step} --config {config} OUT_DIR" in err
    assert main(["corpus", "extract", str(tmp_path / "c")]) == 2  # no SOURCE and no `sources:`
    assert "koroberta corpus extract needs SOURCE OUT_DIR" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
