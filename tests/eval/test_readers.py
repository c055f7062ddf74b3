"""eval readers: the fixtures in the real layouts parse to the right examples; bad files fail on the right line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from koroberta.errors import InputError
from koroberta.eval.readers import (NER_TAGS, NLI_LABELS, read_json_records, read_klue_ner, read_klue_nli,
                                    read_klue_sts, read_kornli_tsv, read_single_tsv)

D = Path(__file__).resolve().parents[1] / "fixtures" / "eval"

_MARK = re.compile(r"<([^<>:]+):([A-Z]{2})>")


def _nsmc(p: Path):
    return read_single_tsv(p, "document", "label", ["0", "1"], layout="NSMC", column_fix="use the NSMC header")


def test_fixtures_parse():
    tr = _nsmc(D / "nsmc-train.tsv")
    assert len(tr) == 20 and set(tr.target) == {0, 1} and tr.line[:2] == [2, 3]
    raw = (D / "nsmc-train.tsv").read_text(encoding="utf-8").splitlines()[1].split("\t")
    assert tr.text[0] == raw[1] and tr.target[0] == int(raw[2])

    nli = read_klue_nli(D / "klue-nli-train.json")
    recs = json.loads((D / "klue-nli-train.json").read_text(encoding="utf-8"))
    assert len(nli) == len(recs) == 12
    assert nli.text_pair[4] == recs[4]["hypothesis"] and NLI_LABELS[nli.target[4]] == recs[4]["gold_label"]
    assert nli.line[:2] == [2, 14]  # the line each object opens on (indent=4 layout, 12 lines per object)

    kor = read_kornli_tsv(D / "kornli-train.tsv")
    assert kor.text == nli.text and kor.text_pair == nli.text_pair and kor.target == nli.target

    sts = read_klue_sts(D / "klue-sts-dev.json")
    recs = json.loads((D / "klue-sts-dev.json").read_text(encoding="utf-8"))
    assert sts.target == [r["labels"]["real-label"] for r in recs] and len(sts) == 6


def test_klue_ner_layout():
    """Five comment lines (one with a tab), header line, one char per line, spaces as ` <TAB>O` lines."""
    d = read_klue_ner(D / "klue-ner-train.tsv")
    lines = (D / "klue-ner-train.tsv").read_text(encoding="utf-8").split("\n")
    headers = [l for l in lines if l.startswith("## klue-ner")]
    assert len(d) == len(headers) == 8 and d.ids[0] == "klue-ner-v1_train_00000_wikitree" and d.line[0] == 6
    for h, text, tags in zip(headers, d.text, d.target):
        marked = h.split("\t", 1)[1]
        assert text == _MARK.sub(r"\1", marked)  # spaces survived as characters
        want = [(m.group(1), m.group(2)) for m in _MARK.finditer(marked)]
        from koroberta.eval.metrics import bio_spans

        got = [(text[a:b], k) for a, b, k in bio_spans([NER_TAGS[t] for t in tags])]
        assert got == want
    sp = d.text[3].index(" ", d.text[3].index("오후"))  # "<오후 3시:TI>": the space inside the entity is I-TI
    assert NER_TAGS[d.target[3][sp]] == "I-TI"


def test_klue_ner_variants(tmp_path):
    """CRLF endings, a lone tab on separator lines, header id followed by a space (konec copies), no comments."""
    body = "## s1 문장\r\n김\tB-PS\r\n \tO\r\n씨\tO\r\n\t\r\n## s2\t<x>\r\n가\tO\r\n"
    p = tmp_path / "v.tsv"
    p.write_bytes(body.encode("utf-8"))
    d = read_klue_ner(p)
    assert d.text == ["김 씨", "가"] and d.ids == ["s1", "s2"] and d.line == [1, 6]
    assert [NER_TAGS[t] for t in d.target[0]] == ["B-PS", "O", "O"]


@pytest.mark.parametrize("body,line,what", [
    ("## a\tx\n가\n", 2, "found 1 field"),                         # tag missing
    ("## a\tx\n가\tO\tO\n", 2, "found 3 field"),                     # one tag too many
    ("## a\tx\n가나\tO\n", 2, "expected one character"),
    ("## a\tx\n가\tB-XX\n", 2, "tag 'B-XX' is not one of"),
    ("## a\tx\n가\tO\n\n나\tO\n", 4, "outside a sentence"),           # blank line, then no header
])
def test_klue_ner_bad(tmp_path, body, line, what):
    p = tmp_path / "bad.tsv"
    p.write_text(body, encoding="utf-8")
    with pytest.raises(InputError, match=f"{re.escape(str(p))}: line {line}: .*{what}.*fix:"):
        read_klue_ner(p)


def test_empty_and_header_only(tmp_path):
    for name, body, what in (("e.tsv", "", "file is empty"), ("w.json", " \n", "file holds only whitespace"),
                             ("h.tsv", "sentence1\tsentence2\tgold_label\n", "has a header line but no data rows"),
                             ("c.tsv", "## 주석 : ##\n## 컬럼명 : CHAR\tNE_TAG\n", "holds no sentences"),
                             ("a.json", "[\n]\n", "holds no records")):
        p = tmp_path / name
        p.write_text(body, encoding="utf-8")
        reader = {"e.tsv": read_kornli_tsv, "h.tsv": read_kornli_tsv, "c.tsv": read_klue_ner,
                  "w.json": read_klue_nli, "a.json": read_klue_sts}[name]
        with pytest.raises(InputError, match=f"{re.escape(str(p))}: {what}.*fix:"):
            reader(p)


def test_tsv_bad_rows(tmp_path):
    p = tmp_path / "k.tsv"
    p.write_text("sentence1\tsentence2\tgold_label\n가\t나\tentailment\n다\t라\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 3: 2 tab-separated field"):
        read_kornli_tsv(p)
    p.write_text("sentence1\tsentence2\tgold_label\n가\t나\tentailment\n\n다\t라\t-\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 4: gold_label '-' is not one of entailment, neutral, contradiction"):
        read_kornli_tsv(p)
    p.write_text("premise\thypothesis\tlabel\n가\t나\t0\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 1: .*lacks column\\(s\\) sentence1, sentence2, gold_label"):
        read_kornli_tsv(p)
    p.write_bytes("id\tdocument\tlabel\n1\t좋다\t1\n2\t".encode() + b"\xff\xfe\t0\n")
    with pytest.raises(InputError, match="line 3: not UTF-8"):
        _nsmc(p)


def _objs(objs) -> str:
    return json.dumps(objs, ensure_ascii=False, indent=4)


def test_json_bad_records(tmp_path):
    ok = {"premise": "가", "hypothesis": "나", "gold_label": "neutral"}
    p = tmp_path / "n.json"
    p.write_text(_objs([ok, {"premise": "가", "gold_label": "neutral"}]), encoding="utf-8")
    with pytest.raises(InputError, match="line 7: record lacks field 'hypothesis'"):
        read_klue_nli(p)
    p.write_text(_objs([ok, ok, dict(ok, gold_label="entail")]), encoding="utf-8")
    with pytest.raises(InputError, match="line 12: gold_label 'entail' is not one of"):
        read_klue_nli(p)
    p.write_text('[\n  {"premise": "가",\n   "hypothesis": "나" "gold_label": "neutral"}\n]', encoding="utf-8")
    with pytest.raises(InputError, match="line 3: invalid JSON"):
        read_klue_nli(p)
    s = tmp_path / "s.json"
    s.write_text(_objs([{"sentence1": "가", "sentence2": "나", "labels": {"real-label": 5.5}}]), encoding="utf-8")
    with pytest.raises(InputError, match="line 2: labels.real-label 5.5 is not a number in \\[0, 5\\]"):
        read_klue_sts(s)
    s.write_text(_objs([{"sentence1": "가", "sentence2": "나", "labels": {"label": 3.0}}]), encoding="utf-8")
    with pytest.raises(InputError, match="line 2: 'labels' lacks 'real-label'"):
        read_klue_sts(s)


def test_json_lines_accepted(tmp_path):
    p = tmp_path / "nli.jsonl"
    rows = [{"premise": "가", "hypothesis": "나", "gold_label": g} for g in NLI_LABELS]
    p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert [n for n, _ in read_json_records(p, layout="x")] == [1, 2, 3]
    assert read_klue_nli(p).target == [0, 1, 2]
