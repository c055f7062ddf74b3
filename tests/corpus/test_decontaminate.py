"""koroberta.corpus.decontaminate: evaluation items from NSMC / KLUE / plain text, n-gram and whole-text matching."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from koroberta.corpus.decontaminate import Decontaminator, EvalItem, load_items
from koroberta.errors import InputError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

LONG = "이 영화는 정말 시간 가는 줄 모르고 봤습니다 배우들의 연기가 특히 좋았어요"  # 12 words: indexed by 8-grams
SHORT = "배우들 연기가 좋았던 영화"  # 14 characters: under min_chars
SHORT_OK = "배우들의 연기가 너무너무 좋았던 영화"  # 5 words, 20 characters: indexed whole
WIKI = ("아바타는 2009년 개봉한 미국의 SF 영화이다. 제임스 카메론이 감독하였다.\n"
        "개봉 이후 전 세계 흥행 1위를 기록하였다.")


def items(*texts: str) -> list[EvalItem]:
    return [EvalItem("eval.txt", i + 1, t) for i, t in enumerate(texts)]


def test_long_item_found_by_an_ngram_even_in_part():
    dc = Decontaminator(items(LONG))
    assert dc.stats() == {"items": 1, "skipped_short": 0, "indexed_ngrams": 12 - 8 + 1, "indexed_whole": 0}
    assert dc.match(WIKI) is None
    planted = WIKI + f'\n한 관람객은 "{LONG}"라고 평했다.'
    assert dc.match(planted) == EvalItem("eval.txt", 1, LONG)
    part = " ".join(LONG.split()[2:11])  # 9 of its 12 words, with the punctuation of a real quote
    assert dc.match(WIKI + f"\n그는 {part}!! 라고 썼다.") is not None


def test_short_item_matched_whole_on_word_boundaries():
    assert len(SHORT_OK) == 20
    dc = Decontaminator(items(SHORT_OK))
    assert dc.stats()["indexed_whole"] == 1 and dc.stats()["indexed_ngrams"] == 0
    assert dc.match(WIKI + f"\n관객 평: 「{SHORT_OK}!」") == EvalItem("eval.txt", 1, SHORT_OK)
    assert dc.match(WIKI + f"\n{SHORT_OK}였다") is None  # the last word differs: not the item
    assert dc.match(WIKI + "\n배우들의 연기가 너무너무 좋았던") is None  # a part of a whole-text item is not the item


def test_items_under_min_chars_are_skipped_and_counted():
    dc = Decontaminator(items("최고", "굿", SHORT, LONG), min_chars=20)
    st = dc.stats()
    assert st["items"] == 4 and st["skipped_short"] == 3 and st["indexed_whole"] == 0
    assert dc.match(f"{WIKI}\n{SHORT}") is None  # skipped: too short to identify anything


# -- load_items --------------------------------------------------------------------------------------------------------
def test_load_nsmc_tsv():
    got = load_items([FIXTURES / "nsmc-tiny.tsv"])
    assert len(got) == 400
    assert got[0] == EvalItem(str(FIXTURES / "nsmc-tiny.tsv"), 2, "앞으로 볼일 없을듯ㄷㄷㄷ")


def test_load_klue_json_and_plain_text(tmp_path):
    klue = tmp_path / "klue-nli.json"
    klue.write_text(json.dumps([{"guid": "a", "premise": "전제 문장이다.", "hypothesis": "가설 문장이다.",
                                 "gold_label": "neutral"},
                                {"guid": "b", "sentence1": "첫 문장", "sentence2": "", "labels": {}}],
                               ensure_ascii=False, indent=1), encoding="utf-8")
    plain = tmp_path / "eval.txt"
    plain.write_text("[속보] 첫째 줄\n\n  둘째 줄  \n", encoding="utf-8")
    got = load_items([klue, plain])
    assert [(Path(i.file).name, i.line, i.text) for i in got] == [
        ("klue-nli.json", 2, "전제 문장이다."), ("klue-nli.json", 2, "가설 문장이다."), ("klue-nli.json", 8, "첫 문장"),
        ("eval.txt", 1, "[속보] 첫째 줄"), ("eval.txt", 3, "둘째 줄")]


@pytest.mark.parametrize("name, content, where", [
    ("bad.json", '[\n {"premise": "a"},\n {"premise": "b",, }\n]\n', "line 3"),
    ("nofield.json", '[{"premise": "a"}, {"title": "b"}]', "line 1"),
    ("bad.tsv", "id\tdocument\tlabel\n1\t좋다\t1\n2\t나쁘다\n", "line 3"),
])
def test_bad_file_is_one_line_input_error(tmp_path, name, content, where):
    p = tmp_path / name
    p.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as e:
        load_items([p])
    msg = str(e.value)
    assert "\n" not in msg and str(p) in msg and where in msg


def test_not_utf8_names_the_iconv_command(tmp_path):
    p = tmp_path / "cp949.txt"
    p.write_bytes("정말 재미있는 영화였습니다 배우들의 연기가 좋았어요\n".encode("cp949") * 3)
    with pytest.raises(InputError, match="iconv -f CP949"):
        load_items([p])


def test_a_row_whose_repeats_the_web_profile_shortened_is_still_found():
    """The web profile shortens character runs before the merge (ㅋㅋㅋㅋ -> ㅋㅋ) while the evaluation file keeps
    them: the row copied into a review must still be found (bench/results/corpus_stage.md found 16 such misses)."""
    from koroberta.corpus.decontaminate import Decontaminator, EvalItem
    from koroberta.corpus.filters import filter_document, make_profile

    row = "뭔 용가맄ㅋㅋㅋㅋ 재밋을 텐데 치킨이 생각나는 건 뭐짘ㅋㅋㅋ"
    kept, _, _ = filter_document(row, make_profile("web"))
    assert kept != row and "ㅋㅋㅋ" not in kept  # the profile did shorten it
    d = Decontaminator([EvalItem(text=row, file="eval.tsv", line=2)])
    assert d.match(kept) is not None
    assert d.match("조오오오오온나 재미없고 무섭지도 않고 1편이 훨씬 나음") is None
