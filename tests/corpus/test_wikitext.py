from koroberta.corpus.wikitext import (is_disambiguation, is_redirect_text, strip_braces, strip_links,
                                       wikitext_to_lines)


def lines(t, **kw):
    return wikitext_to_lines(t, drop_sections=["각주", "외부 링크"], **kw)


def test_nested_multiline_templates_and_tables():
    t = "{{정보상자 인물\n| 이름 = {{llang|en|X}}\n| 출생일 = {{출생일|1946|9|1}}\n}}\n'''가'''는 나이다.\n{| class=wikitable\n|-\n| a || {{b}}\n|}\n끝이다."
    assert lines(t) == ["가는 나이다.", "끝이다."]


def test_lang_template_keeps_text():
    assert strip_braces("카터({{llang|en|James Carter}}, 1924년)") == "카터(James Carter, 1924년)"


def test_links():
    assert strip_links("[[대한민국의 대통령|대통령]]과 [[서울]] [[X#역사|역사]]") == "대통령과 서울 역사"
    t = "[[파일:A.jpg|섬네일|캡션 [[링크]] 포함]]본문 [[분류:사람]][[en:Foo]][[File:B.png|thumb|x]][[그림:C]][[Image:D]]"
    assert strip_links(t) == "본문 "


def test_refs_comments_math_tags_magic_entities():
    t = ("가<ref name=\"a\">{{웹 인용|url=x}}</ref>, 나<ref name=b/> 다<ref name=\"c\" />.<!-- 주석\n[[x]] -->"
         " <math>x^2</math><small>작은</small>&nbsp;글<br />자 __TOC__ &amp; [http://x.org 외부]")
    assert lines(t) == ["가, 나 다. 작은 글 자 & 외부"]


def test_headings_dropped_and_reference_sections_skipped():
    t = "첫 문단이다.\n== 생애 ==\n생애 문단.\n== 각주 ==\n{{각주}}\n* 참고 항목 글\n=== 하위 ===\n하위도 버린다\n== 평가 ==\n평가 문단."
    assert lines(t) == ["첫 문단이다.", "생애 문단.", "평가 문단."]


def test_lists_keep_text():
    assert lines("* 하나\n** 둘째\n# 셋째\n; 용어\n: 설명") == ["하나", "둘째", "셋째", "용어", "설명"]


def test_malformed_markup_does_not_swallow_page():
    t = "가 문장이다.<ref>{{웹 인용|url=x\n\n다음 문단은 살아야 한다.\n\n{{미완성 틀\n셋째 문단."
    out = lines(t)
    assert "다음 문단은 살아야 한다." in out
    assert out[0] == "가 문장이다."
    assert lines("앞 ]] 뒤 }} 끝. [[열린 링크 뒤") == ["앞 뒤 끝. 열린 링크 뒤"]
    assert lines("가.\n{| class=wikitable\n| 셀\n\n나중 문단.") == ["가.", "나중 문단."]
    assert lines("가.<ref>안 닫힌 각주\n다음 줄.") == ["가.", "다음 줄."]


def test_redirect_and_disambiguation_detection():
    assert is_redirect_text("#넘겨주기 [[X]]") and is_redirect_text("#REDIRECT [[X]]") and is_redirect_text(" #redirect [[x]]")
    assert not is_redirect_text("본문 #넘겨주기")
    assert is_disambiguation("'''층'''의 다른 뜻은\n{{동음이의}}") and is_disambiguation("{{disambig}}")
    assert not is_disambiguation("{{동음이의 안내|X}} 본문")


# -- the fast paths and the facts they rest on -------------------------------------------------------------------
import random  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import unicodedata  # noqa: E402

from koroberta.corpus import wikitext as W  # noqa: E402
from koroberta.text import _DELETE  # noqa: E402

_ALPHABET = ["[[", "]]", "[", "]", "{{", "}}", "{", "}", "{|", "|}", "|", "\n", "\n\n", " ", " \t", "=", "==",
             "<ref>", "</ref>", "<ref name=a/>", '<ref name="b">', "<REF>", "</REF >", "<ref", "</ref", "<refx>",
             "<br>", "''", "&amp;", "파일:", "분류:", "en:", ":", "lang|en|", "가", "나다", "abc", "*", "!", "\u00a0",
             "\u3000", "\u200b", "\x01", "\u2028", "ᄀ", "ᅡ", "ｆｕｌｌ", "①", "(x)", "각주"]


def _random_markup(rng: random.Random, n: int = 40) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, n)))


def test_unicode_facts_behind_the_line_fast_path():
    """wikitext_to_lines skips deletion and whitespace collapse on printable lines and tests alnum with a regex;
    that is exact only because of these facts, checked over every code point."""
    chars = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    assert all(bool(W._ALNUM.match(c)) == c.isalnum() for c in chars)
    printable = [c for c in chars if c.isprintable()]
    assert [c for c in printable if c.isspace()] == [" "]
    assert not any(_DELETE.match(c) for c in printable)
    for form in ("NFC", "NFKC"):  # normalising never re-creates a deletable character (so re-cleaning is a no-op)
        assert not [c for c in chars if not _DELETE.match(c) and _DELETE.search(unicodedata.normalize(form, c))]


def test_line_cleaning_edge_cases():
    # deleting a zero-width space lets conjoining jamo compose, as when the whole page was normalised at once
    assert lines("ᄀ\u200bᅡ 글자") == ["가 글자"]
    assert lines("가\t나\u00a0\u00a0다  라\u3000") == ["가 나 다 라"]
    assert lines("\u200b== 각주 ==\n* 버림\n== 평가 ==\n남김") == ["남김"]
    assert lines("ｆｕｌｌ①", normalization="NFKC") == ["full1"]
    assert lines("ｆｕｌｌ①") == ["ｆｕｌｌ①"]
    assert lines("_ _\n--\n가나") == ["가나"]  # no alphanumeric character: dropped ("_" is \w but not alnum)


def test_flat_link_path_equals_the_stack():
    rng = random.Random(7)
    flat = 0
    for _ in range(4000):
        t = _random_markup(rng)
        opens, closes = W.link_tokens(t)
        if W.links_alternate(opens, closes):
            flat += 1
            assert W._links_flat(t, opens, closes) == W._links_nested(t, opens, closes), repr(t)
    assert flat > 500


def test_token_searches_equal_one_joint_scan():
    joint_links = re.compile(r"\[\[|\]\]")
    joint_braces = re.compile(r"\{\{|\}\}|\n[ \t]*(?:\{\||\|\}(?!\}))")  # the single alternation it replaced
    kinds = {"{{": 0, "}}": 1}
    rng = random.Random(11)
    for _ in range(4000):
        t = _random_markup(rng)
        opens, closes = W.link_tokens(t)
        assert [(m.start(), m.group()) for m in joint_links.finditer(t)] == \
            sorted([(o, "[[") for o in opens] + [(c, "]]") for c in closes]), repr(t)
        want = [m.start() * 4 + kinds[m.group()] if m.group() in kinds else m.start() * 4 + (
            2 if m.group()[-1] == "|" else 3) for m in joint_braces.finditer("\n" + t)]
        want = [c - 4 if c & 3 < 2 else c for c in want]  # "{{"/"}}" positions in t, table tokens at line starts
        assert W.brace_tokens(t)[0] == want, repr(t)


def test_unrolled_ref_pattern_equals_the_tempered_one():
    tempered = re.compile(r"<ref\b[^>/]*(?:/(?!>)[^>/]*)*>(?:(?!<ref[\s>/]|\n\n).)*?</ref\s*>", re.S | re.I)
    rng = random.Random(3)
    for _ in range(4000):
        t = _random_markup(rng, 60)
        assert W._REF_PAIR.sub("", t) == tempered.sub("", t), repr(t)
