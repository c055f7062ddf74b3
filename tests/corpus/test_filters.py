"""koroberta.corpus.filters: profiles, each drop reason, repeats, boilerplate, and that real-looking text is kept."""

from __future__ import annotations

import pytest

from koroberta.corpus.filters import FILTER_NAMES, PROFILES, Profile, filter_document, make_profile
from koroberta.errors import ConfigError

WEB = make_profile("web")
WIKI = make_profile("wiki")
NONE = make_profile("none")

# Written for these tests (not copied from any source): a short encyclopedic article and two reviews.
ARTICLE = (
    "한강은 대한민국의 중부를 흐르는 강으로, 서울특별시를 동서로 가로지른다.\n"
    "강원도 태백시의 검룡소에서 발원하여 여러 지류와 합쳐진 뒤 황해로 흘러든다.\n"
    "조선 시대에는 세곡을 나르는 뱃길로 쓰였고, 1980년대 종합 개발 이후에는 둔치에 공원이 조성되었다.\n"
    "오늘날 한강 다리는 서른 개가 넘으며, 유람선과 수상 택시가 운항한다."
)
REVIEW = "생각보다 훨씬 재밌었어요. 배우들 연기가 좋네요"
SHORT_REVIEW = "완전 강추합니다 ㅎㅎ"


# -- profiles ---------------------------------------------------------------------------------------------------------
def test_profiles_and_defaults():
    assert PROFILES == ("wiki", "web", "none")
    assert WIKI == Profile("wiki", 100, False, False, False, False)
    assert make_profile("wiki", wiki_min_chars=250).min_chars == 250
    assert WEB == Profile("web", 10, True, True, True, True)
    assert NONE == Profile("none", 0, False, False, False, False)
    assert WEB.to_dict() == {"name": "web", "min_chars": 10, "normalize_repeats": True, "boilerplate": True,
                             "pii": True, "quality": True}


def test_overrides():
    p = make_profile("web", {"min_chars": 20, "pii": False})
    assert (p.name, p.min_chars, p.pii, p.quality) == ("web", 20, False, True)
    assert make_profile("wiki", {"quality": True}, wiki_min_chars=50) == Profile("wiki", 50, False, False, False, True)
    assert make_profile("none", None) == NONE


@pytest.mark.parametrize("name, overrides, needles", [
    ("webb", None, ["unknown filter profile 'webb'", "wiki, web, none", "use 'web'"]),
    ("news", None, ["unknown filter profile 'news'", "wiki, web, none"]),
    ("web", {"min_char": 5}, ["unknown key(s) min_char", "valid keys: min_chars", "rename min_char to min_chars"]),
    ("web", {"bogus": 1}, ["unknown key(s) bogus", "remove it"]),
    ("web", {"name": "wiki"}, ["'name' cannot be overridden"]),
    ("web", {"pii": 1}, ["pii must be true or false"]),
    ("web", {"min_chars": -1}, ["min_chars must be an integer >= 0"]),
    ("web", {"min_chars": True}, ["min_chars must be an integer >= 0"]),
])
def test_make_profile_errors_are_one_line(name, overrides, needles):
    with pytest.raises(ConfigError) as e:
        make_profile(name, overrides)
    msg = str(e.value)
    assert "\n" not in msg
    for n in needles:
        assert n in msg


# -- kept: real-looking text ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [ARTICLE, REVIEW, SHORT_REVIEW])
def test_web_keeps_real_text(text):
    out, reason, counters = filter_document(text, WEB)
    assert (out, reason, counters) == (text, "", {})


def test_web_keeps_review_quoting_english_and_text_repeated_twice():
    # a Korean comment around an English quote (Hangul share ~0.3), and a line said twice (repeated share <= 0.5)
    quote = "명대사 If you're gonna be a bear, be a grizzly 이 말 밖에 생각 안난다"
    twice = "안돼, 올라갔잖아. 안돼, 올라갔잖아."
    for t in (quote, twice):
        assert filter_document(t, WEB)[1] == ""


def test_wiki_profile_is_todays_behaviour():
    noisy = ARTICLE + "\nㅋㅋㅋㅋㅋ 연락처 010-1234-5678\n무단전재 및 재배포 금지"
    assert filter_document(noisy, WIKI) == (noisy, "", {})
    assert filter_document("가" * 99, WIKI) == (None, "too_short", {})
    assert filter_document("가" * 100, WIKI) == ("가" * 100, "", {})
    assert filter_document("good movie " * 20, WIKI)[1] == ""  # no quality filters


def test_none_profile_keeps_everything():
    for t in ("", "!!!!", "spam " * 50, "ㅋㅋㅋㅋㅋ"):
        assert filter_document(t, NONE) == (t, "", {})


# -- dropped: one planted junk document per filter --------------------------------------------------------------------
JUNK = {
    "few_letters": "1234 5678 9012 3456 7890 | 2.5 3.75 | 100,000 200,000 ## 1",
    "not_korean": "This movie was great, I really enjoyed the acting and the story.",
    "duplicate_lines": "지금 바로 확인하세요\n오늘의 특가 상품\n지금 바로 확인하세요\n오늘의 특가 상품\n지금 바로 확인하세요",
    "repeated_text": "미친 영화 미친 영화 미친 영화 미친 영화 미친 영화 미친 영화",
    "too_short": "재밌어요",
}


@pytest.mark.parametrize("reason", FILTER_NAMES)
def test_each_filter_drops_its_junk(reason):
    out, got, _ = filter_document(JUNK[reason], WEB)
    assert (out, got) == (None, reason)


def test_repeated_text_without_spaces():
    assert filter_document("쓰레기쓰레기쓰레기쓰레기쓰레기쓰레기", WEB)[1] == "repeated_text"


def test_quality_switch_and_min_chars_override():
    assert filter_document(JUNK["not_korean"], make_profile("web", {"quality": False}))[1] == ""
    assert filter_document("재밌어요", make_profile("web", {"min_chars": 4}))[1] == ""


def test_checks_run_in_order():
    # few_letters before not_korean: a digit string with a little English is "few_letters"
    assert filter_document("12345678901234567890 ok", WEB)[1] == "few_letters"
    # a document that is only boilerplate is emptied, then too short
    assert filter_document("무단전재 및 재배포 금지\nCopyright ⓒ 한국일보", WEB) == (
        None, "too_short", {"boilerplate_lines": 2})


def test_counters_survive_a_drop():
    out, reason, counters = filter_document("ㅋㅋㅋㅋㅋㅋㅋㅋㅋㅋ", WEB)
    assert (out, reason, counters) == (None, "too_short", {"repeats_normalised": 1})


# -- repeats ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("src, want", [
    ("재밌다ㅋㅋㅋㅋㅋ", "재밌다ㅋㅋ"),
    ("슬프다ㅠㅠㅠ", "슬프다ㅠㅠ"),
    ("최고다!!!!", "최고다!!"),
    ("좋아요~~~??", "좋아요~~??"),
    ("사랑해♥♥♥♥", "사랑해♥♥"),
    ("그러니까....", "그러니까..."),
    ("하하하하하 웃기다", "하하 웃기다"),
])
def test_repeats_normalised(src, want):
    out, _, counters = filter_document(src + " 정말 좋은 영화", make_profile("web", {"quality": False}))
    assert out == want + " 정말 좋은 영화"
    assert counters == {"repeats_normalised": 1}


@pytest.mark.parametrize("text", [
    "1000000원과 2000년대",  # digits never
    "헨리 III세와 CCLXXVIII, www.example.kr, zzzz",  # Latin never
    "СССР",  # other letters never
    "그는 말했다... 그리고",  # the three-dot ellipsis is kept
    "전기기기 산업과 《뽀뽀뽀》, 하하하",  # Hangul syllables: runs of exactly 3 are words
    "ㅋㅋ 좋다!! ~~",  # runs of 2 are left
])
def test_repeats_left_alone(text):
    out, _, counters = filter_document(text, make_profile("web", {"quality": False, "min_chars": 0}))
    assert out == text and "repeats_normalised" not in counters


def test_repeats_counts_runs():
    out, _, counters = filter_document("와ㅋㅋㅋㅋ 진짜!!!! 대박ㅠㅠㅠㅠ 영화", make_profile("web", {"quality": False}))
    assert out == "와ㅋㅋ 진짜!! 대박ㅠㅠ 영화"
    assert counters == {"repeats_normalised": 3}


# -- boilerplate ------------------------------------------------------------------------------------------------------
NEWS = "\n".join([
    "(서울=연합뉴스) 홍길동 기자 = 정부는 내년부터 한강 둔치에 공원을 더 만든다고 15일 밝혔다.",
    "시는 이를 위해 예산을 편성하고 시민 의견을 듣기로 했다.",
    "사진=연합뉴스",
    "홍길동 기자 gildong@yna.co.kr",
    "<저작권자(c) 연합뉴스, 무단 전재-재배포 금지>",
    "▶ 네이버에서 연합뉴스 채널 구독하기",
    "Copyright ⓒ 뉴스1코리아 www.news1.kr",
    "※ 이 기사의 저작권은 한국일보에 있으며, 무단전재 및 재배포를 금지합니다.",
    "ⓒ 중앙일보(https://www.joongang.co.kr), 무단 전재 및 재배포 금지",
    "저작권자 © 서울신문",
    "Copyright 2019 Hankyoreh. All rights reserved.",
])


def test_boilerplate_lines_dropped_and_dateline_stripped():
    out, reason, counters = filter_document(NEWS, WEB)
    assert reason == ""
    assert out == ("정부는 내년부터 한강 둔치에 공원을 더 만든다고 15일 밝혔다.\n"
                   "시는 이를 위해 예산을 편성하고 시민 의견을 듣기로 했다.")
    assert counters == {"boilerplate_lines": 9, "bylines_stripped": 1}


@pytest.mark.parametrize("line, want", [
    ("[서울=뉴시스] 김철수 기자 = 경기가 회복세를 보였다는 분석이 나왔다.", "경기가 회복세를 보였다는 분석이 나왔다."),
    ("【서울=뉴시스】 경기가 회복세를 보였다는 분석이 나왔다.", "경기가 회복세를 보였다는 분석이 나왔다."),
    ("(부산=뉴스1) 박영희 기자 = 해수욕장이 다음 달 문을 연다고 시가 밝혔다.", "해수욕장이 다음 달 문을 연다고 시가 밝혔다."),
    ("(워싱턴=연합뉴스TV) 미국 정부가 새 관세를 발표했다는 보도가 나왔다.", "미국 정부가 새 관세를 발표했다는 보도가 나왔다."),
    ("[아이뉴스24 김용기 기자] 새 스마트폰이 오늘 출시됐다고 업체가 밝혔다.", "새 스마트폰이 오늘 출시됐다고 업체가 밝혔다."),
    ("김철수 특파원 = 현지 시각으로 어제 회담이 열렸다는 소식이 전해졌다.", "현지 시각으로 어제 회담이 열렸다는 소식이 전해졌다."),
])
def test_byline_variants(line, want):
    out, _, counters = filter_document(line, WEB)
    assert out == want and counters == {"bylines_stripped": 1}


@pytest.mark.parametrize("line", [
    # prose that mentions copyright in a long line is not a footer
    "저작권법은 다른 사람의 글을 무단전재하는 행위를 금지하며, 이를 어기면 손해배상 책임을 진다. "
    "다만 보도나 비평을 위한 정당한 범위 안의 인용은 허용되며, 이 경우 출처를 밝혀야 한다는 것이 판례의 입장이다.",
    "(x=1)일 때 함수의 값은 0이 되므로 이 점에서 그래프가 축과 만난다.",  # a formula is not a dateline
    "(넓이=가로×세로) 공식으로 직사각형의 넓이를 구할 수 있다.",  # nor is a Hangul formula
    "기자는 현장에서 시민들의 이야기를 들었다.",  # 기자 without e-mail or "="
    # short prose about copyright (shapes found on kowiki): no notice
    "저작권 표시에는 ©, (C) 또는 (c) 기호를 쓰기도 한다.",
    "요건을 갖추면 저작권자의 허락 없이도 이용할 수 있다.",
    "만료된 저작물은 공유마당(gongu.copyright.or.kr)에서 찾는다.",
    "오프닝 곡을 들으면 설렌다。ⓒⓞⓞⓛ",
    "(c) 세 번째 요건은 공표된 저작물일 것",  # an enumerated item, not "(c) 2019"
])
def test_boilerplate_keeps_prose(line):
    out, _, counters = filter_document(line, make_profile("web", {"quality": False}))
    assert out == line and counters == {}


def test_boilerplate_switch_off():
    p = make_profile("web", {"boilerplate": False, "pii": False, "quality": False})
    assert filter_document(NEWS, p) == (NEWS, "", {})


# -- PII through filter_document --------------------------------------------------------------------------------------
def test_pii_in_web_profile():
    text = "문의는 010-1234-5678 또는 help@example.co.kr 로 해 주세요. 답변은 빠르게 드립니다."
    out, reason, counters = filter_document(text, WEB)
    assert reason == ""
    assert out == "문의는 <전화번호> 또는 <이메일> 로 해 주세요. 답변은 빠르게 드립니다."
    assert counters == {"pii_phone": 1, "pii_email": 1}


def test_deterministic():
    for t in (NEWS, ARTICLE, JUNK["repeated_text"]):
        assert filter_document(t, WEB) == filter_document(t, WEB)
