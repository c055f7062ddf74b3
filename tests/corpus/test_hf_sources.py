"""Hugging Face ``datasets`` data in and out of the corpus stage.

In: a ``save_to_disk`` directory, a Parquet file, a JSON Lines file and a directory of Parquet shards, each holding
the same documents as a plain-text file (same ids: the text reader's ``<file name>:<doc index>``), must give
byte-identical train/valid/test files and the same stats as that text file. Out: ``split/hf/*.parquet`` read back
with ``datasets.load_dataset`` equals the ``.txt`` files, and its bytes do not depend on shard counts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # before datasets is imported: these tests read local files only

datasets = pytest.importorskip("datasets")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from koroberta.artifacts import read_manifest  # noqa: E402
from koroberta.cli import main as cli_main  # noqa: E402
from koroberta.corpus import parquet_out  # noqa: E402
from koroberta.corpus.build import build_corpus
from koroberta.corpus.config import CorpusConfig
from koroberta.corpus.sources import ReadStats, detect_format, iter_source  # noqa: E402
from koroberta.corpus.steps import assign_split, clean, extract, sentences, split  # noqa: E402

SALT = "hf-test"
CFG = CorpusConfig(valid_fraction=0.25, test_fraction=0.25, split_salt=SALT, report=False, min_chars=30)
SPLITS = ("train", "valid", "test")
#: a paragraph that looks like wikitext: a plain-text source must keep it verbatim (no markup rules applied)
MARKUP_LIKE = "집합 {{x | x > 0}} 과 [[대괄호]] 그리고 '''따옴표''' 는 평문이므로 그대로 남는다."


def _documents() -> list[dict]:
    """Documents with what the cleaner must handle the same way for every source kind."""
    docs = []
    for k in range(16):
        paras = [f"{k}번 문서의 첫 문단이다. 이 문단은 두 문장으로 되어 있다.",
                 f"{k}번 문서의 둘째 문단이다. 여기에도 문장이 여럿 있다. 마지막 문장이다."]
        docs.append({"title": f"문서 {k}", "paras": paras})
    docs[1]["paras"].append("특수 토큰 <mask> 이 문장에 들어 있다.")  # literal special token: removed, counted
    docs[2]["paras"][0] = "제어\x07문자와\u00a0줄바꿈 없는 공백이 있는 문단이다. 정규화된다."  # control + NBSP
    docs[3]["paras"].append("\u1100\u1161\u11a8 자모로 쓴 글자가 있는 문단이다.")  # NFD jamo -> NFC 각
    docs[4]["paras"].append(MARKUP_LIKE)
    docs[5]["paras"] = ["짧다."]  # < min_chars: too_short
    docs[6] = {"title": "복제", "paras": list(docs[0]["paras"])}  # exact duplicate of doc 0: duplicate
    for i, d in enumerate(docs):
        d["id"] = f"docs.txt:{i}"  # what the plain-text reader calls document i of docs.txt
        d["text"] = "\n".join(d["paras"])
    return docs


DOCS = _documents()
ROWS = {"id": [d["id"] for d in DOCS], "title": [d["title"] for d in DOCS], "text": [d["text"] for d in DOCS]}


def _sources(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    out = {"text": root / "docs.txt"}
    out["text"].write_text("\n\n".join(d["text"] for d in DOCS) + "\n", encoding="utf-8")
    table = pa.table(ROWS)
    out["parquet"] = root / "wiki.parquet"
    pq.write_table(table, out["parquet"])
    out["jsonl"] = root / "wiki.jsonl"
    out["jsonl"].write_text("".join(json.dumps({"id": i, "title": t, "text": x}, ensure_ascii=False) + "\n"
                                    for i, t, x in zip(ROWS["id"], ROWS["title"], ROWS["text"])), encoding="utf-8")
    out["disk"] = root / "saved"
    datasets.Dataset.from_dict(ROWS).save_to_disk(str(out["disk"]), num_shards=2)
    shards = root / "shards"
    (shards / "data").mkdir(parents=True)
    for i, (a, b) in enumerate([(0, 5), (5, 11), (11, len(DOCS))]):  # sorted by path = row order
        pq.write_table(table.slice(a, b - a), shards / "data" / f"train-{i:05d}-of-00003.parquet")
    (shards / "README.md").write_text("---\nlicense: cc-by-sa-4.0\n---\n")  # a dataset repo's card: ignored
    out["shards"] = shards
    return out


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    return _sources(tmp_path_factory.mktemp("hf-src"))


@pytest.fixture(scope="module")
def builds(sources, tmp_path_factory) -> dict[str, Path]:
    """Every source through ``koroberta corpus build`` (the CLI's main, in this process: a fresh interpreter would
    pay the kss import, ~10-20 s on 2 busy cores, once per source)."""
    out = {}
    for kind, src in sources.items():
        d = tmp_path_factory.mktemp(f"corpus-{kind}")
        rc = cli_main(["corpus", "build", str(src), str(d), "--min-chars", "30", "--valid-fraction", "0.25",
                       "--test-fraction", "0.25", "--split-salt", SALT, "--no-report"])
        assert rc == 0, kind
        out[kind] = d / "split"
    return out


def test_detect_format(sources):
    assert {k: detect_format(p) for k, p in sources.items()} == {
        "text": "text", "parquet": "parquet", "jsonl": "jsonl", "disk": "hf_disk", "shards": "parquet"}


def test_rows_are_plain_text_pages(sources):
    pages = list(iter_source(sources["parquet"], ReadStats()))
    assert [(p.ord, p.id, p.title, p.text) for p in pages] == [
        (i, d["id"], d["title"], d["text"]) for i, d in enumerate(DOCS)]
    assert all(p.clean and p.ns == 0 and not p.redirect for p in pages)  # the plain-text cleaning path


def test_every_source_gives_the_text_sources_split(builds):
    want = {s: (builds["text"] / f"{s}.txt").read_bytes() for s in SPLITS}
    assert all(want.values()), "the fixture must put documents in every split"
    st_text = read_manifest(builds["text"])["stats"]
    assert st_text["dropped"] == {"duplicate": 1, "too_short": 1}
    assert st_text["repaired"] == {"special_token_literals_removed": 1}
    for kind in ("parquet", "jsonl", "disk", "shards"):
        for s in SPLITS:
            assert (builds[kind] / f"{s}.txt").read_bytes() == want[s], (kind, s)
        st = read_manifest(builds[kind])["stats"]
        for key in ("documents", "sentences", "characters", "dropped", "repaired"):
            assert st[key] == st_text[key], (kind, key)
        ext = read_manifest(builds[kind].parent / "extract")["stats"]
        assert ext["pages_read"] == len(DOCS), kind
        for s in SPLITS:  # same documents, ids and titles, written by four separate runs: the same Parquet bytes
            hf = (builds[kind] / "hf" / f"{s}.parquet").read_bytes()
            assert hf == (builds["parquet"] / "hf" / f"{s}.parquet").read_bytes(), (kind, s)


def test_plain_text_is_cleaned_not_mangled(builds):
    text = "".join((builds["parquet"] / f"{s}.txt").read_text(encoding="utf-8") for s in SPLITS)
    assert MARKUP_LIKE in text.splitlines()  # no wikitext rule touched it (one sentence, kept whole)
    assert "<mask>" not in text and "\x07" not in text and "\u00a0" not in text
    assert "제어문자와 줄바꿈" in text and "각 자모로" in text and "\u1100" not in text
    assert "짧다." not in text


def _txt_docs(path: Path) -> list[list[str]]:
    body = path.read_text(encoding="utf-8")
    return [doc.split("\n") for doc in body[:-1].split("\n\n")] if body else []


def test_hf_output_reads_back_with_datasets(builds):
    d = builds["parquet"]
    files = {s: str(d / "hf" / f"{s}.parquet") for s in SPLITS}
    ds = datasets.load_dataset("parquet", data_files=files)
    kept = [x for x in DOCS if x["id"] not in ("docs.txt:5", "docs.txt:6")]  # too short, duplicate
    for s in SPLITS:
        rows = ds[s]
        assert rows.column_names == ["id", "title", "sentences"]
        assert [r["sentences"] for r in rows] == _txt_docs(d / f"{s}.txt"), s
        ids = [x["id"] for x in kept if assign_split(x["id"], SALT, 0.25, 0.25) == s]
        assert list(rows["id"]) == ids, s
        assert list(rows["title"]) == [x["title"] for x in kept if x["id"] in ids]
    # the directory alone is a dataset too: datasets maps valid.parquet to the "validation" split
    by_dir = datasets.load_dataset(str(d / "hf"))
    assert set(by_dir) == {"train", "validation", "test"} and by_dir["validation"]["id"] == ds["valid"]["id"]
    # plain text has no titles: null, not ""
    assert set(datasets.load_dataset("parquet", data_files=str(builds["text"] / "hf" / "train.parquet"),
                                     split="train")["title"]) == {None}
    # the files are in the manifest (hashed like every output of the step)
    assert {f"hf/{s}.parquet" for s in SPLITS} <= set(read_manifest(d)["outputs"])


def test_hf_output_bytes_do_not_depend_on_shards(sources, tmp_path, monkeypatch):
    """Two small row groups per file, a 1-shard and a 2/3-shard run: identical bytes, and written anew each time."""
    monkeypatch.setattr(parquet_out, "ROWS", 2)
    src = sources["jsonl"]
    one = build_corpus(CFG, src, tmp_path / "one")
    for i in range(2):
        extract(CFG, src, tmp_path / "many", shard=i, num_shards=2)
    clean(CFG, tmp_path / "many", num_shards=2)
    for i in range(3):
        sentences(CFG, tmp_path / "many", shard=i, num_shards=3)
    many = split(CFG, tmp_path / "many", num_shards=3)
    for s in SPLITS:
        a, b = one / "hf" / f"{s}.parquet", many / "hf" / f"{s}.parquet"
        assert a.read_bytes() == b.read_bytes(), s
    assert pq.ParquetFile(one / "hf" / "train.parquet").metadata.num_row_groups >= 2
    assert read_manifest(one)["outputs"] == read_manifest(many)["outputs"]


def test_empty_split_has_no_parquet_file(sources, tmp_path):
    d = build_corpus(CFG.replace(valid_fraction=0.0, test_fraction=0.0), sources["parquet"], tmp_path)
    assert sorted(p.name for p in (d / "hf").iterdir()) == ["train.parquet"]
    assert (d / "valid.txt").read_bytes() == b""


def test_rows_without_id_get_their_row_index(tmp_path):
    """No ``id`` column: ``ord<row>``; a null id or text in an ``id``-column dataset: ``ord<row>`` / dropped empty."""
    no_id = tmp_path / "noid.parquet"
    pq.write_table(pa.table({"text": ROWS["text"][:4]}), no_id)
    pages = list(iter_source(no_id, ReadStats()))
    assert [p.id for p in pages] == ["ord0", "ord1", "ord2", "ord3"] and [p.title for p in pages] == [""] * 4
    nulls = tmp_path / "nulls.jsonl"
    nulls.write_text('{"id": 7, "text": "' + "가" * 40 + '"}\n{"id": null, "text": "' + "나" * 40 + '"}\n'
                     '{"id": 9, "text": null}\n', encoding="utf-8")
    d = extract(CFG, nulls, tmp_path / "o")
    docs = [json.loads(l) for l in (d / "docs.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in docs] == ["7", "ord1"]
    assert read_manifest(d)["stats"]["dropped"] == {"empty": 1}


def test_dataset_dict_reads_every_split_in_order(tmp_path):
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["가", "나"]}),
                               "test": datasets.Dataset.from_dict({"text": ["다"]})})
    dd.save_to_disk(str(tmp_path / "dd"))
    pages = list(iter_source(tmp_path / "dd", ReadStats()))
    assert [(p.id, p.text) for p in pages] == [("ord0", "가"), ("ord1", "나"), ("ord2", "다")]


# -- errors: one line, exit 2, the path and the fix --------------------------------------------------------------------
def _check_error(src: Path, said: str, rc: int, stdout: str, stderr: str, out: Path) -> None:
    assert rc == 2, (src, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {src}: "), (src, stderr)
    assert said in lines[0] and "— fix: " in lines[0], lines[0]
    assert "Traceback" not in stderr and stdout == ""
    assert not (out / "extract").exists()


def test_bad_datasets_are_one_line_errors_from_the_cli(tmp_path):
    """The three kinds of bad dataset, each through ``python -m koroberta corpus build`` in a fresh interpreter."""
    (tmp_path / "in").mkdir()
    cases = []
    p = tmp_path / "in" / "no_text.parquet"
    pq.write_table(pa.table({"content": ["가나다"]}), p)
    cases.append((p, "no `text` column (columns: content)"))
    p = tmp_path / "in" / "int_text.parquet"
    pq.write_table(pa.table({"text": [1, 2]}), p)
    cases.append((p, "column `text` is of type int64, not string"))
    p = tmp_path / "in" / "broken.parquet"
    p.write_bytes(b"PAR1" + b"\0" * 64)
    cases.append((p, "not readable as a Parquet file"))
    p = tmp_path / "in" / "broken.jsonl"
    p.write_text('{"text": "가나다"}\n{"text": "끊긴 줄\n', encoding="utf-8")  # a raw newline inside a string
    cases.append((p, "not readable as a JSON Lines file"))
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1"}
    # in parallel: each interpreter spends most of its ~3 s importing (datasets; torch too for a streaming dataset)
    procs = [(tmp_path / f"out{i}", subprocess.Popen(
        [sys.executable, "-m", "koroberta", "corpus", "build", str(src), str(tmp_path / f"out{i}")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)) for i, (src, _) in enumerate(cases)]
    for (src, said), (out, proc) in zip(cases, procs):
        stdout, stderr = proc.communicate(timeout=300)
        _check_error(src, said, proc.returncode, stdout, stderr, out)


def test_more_bad_datasets(tmp_path, capsys):
    """Further cases through the same CLI entry point, in this process (no interpreter start per case)."""
    (tmp_path / "in").mkdir()
    cases = []
    p = tmp_path / "in" / "list_id.parquet"
    pq.write_table(pa.table({"text": ["가"], "id": [[1, 2]]}), p)
    cases.append((p, p, "column `id` is of type List, not string or integer"))
    p = tmp_path / "in" / "int_title.parquet"
    pq.write_table(pa.table({"text": ["가"], "title": [3]}), p)
    cases.append((p, p, "column `title` is of type int64, not string"))
    d = tmp_path / "in" / "shards"
    d.mkdir()
    pq.write_table(pa.table({"text": ["가"]}), d / "a.parquet")
    (d / "b.parquet").write_bytes(b"not parquet at all")
    cases.append((d, d / "b.parquet", "not readable as a Parquet file"))  # names the shard, not the directory
    p = tmp_path / "in" / "mixed.jsonl"
    p.write_text('{"text": "가나다"}\n{"text": 5}\n', encoding="utf-8")  # datasets makes a mixed column Json
    cases.append((p, p, "column `text` is of type Json, not string"))
    p = tmp_path / "in" / "saved_no_text"
    datasets.Dataset.from_dict({"body": ["가"]}).save_to_disk(str(p))
    cases.append((p, p, "no `text` column (columns: body)"))
    capsys.readouterr()
    for i, (source, named, said) in enumerate(cases):
        out = tmp_path / f"out{i}"
        rc = cli_main(["corpus", "build", str(source), str(out)])
        cap = capsys.readouterr()
        _check_error(named, said, rc, cap.out, cap.err, out)
