"""koroberta.corpus.pii: each kind replaced and counted, non-PII numbers kept, placeholder token properties."""

from __future__ import annotations

import unicodedata

import pytest

from koroberta.corpus.pii import PLACEHOLDERS, replace_pii
from koroberta.corpus.wikitext import remove_special_literals
from koroberta.text import clean_text, find_special_literal, special_literals

RRN, PHONE, EMAIL, ACCOUNT = (PLACEHOLDERS[k] for k in ("rrn", "phone", "email", "account"))


@pytest.mark.parametrize("text, want, counts", [
    # resident registration numbers: real dates, gender digit 1-8 (5-8: foreign residents), new random tails
    ("주민번호 900101-1234567 입니다", f"주민번호 {RRN} 입니다", {"pii_rrn": 1}),
    ("주민번호는 020315 - 4123456", f"주민번호는 {RRN}", {"pii_rrn": 1}),
    ("외국인등록번호 851224-5012345", f"외국인등록번호 {RRN}", {"pii_rrn": 1}),
    ("윤년생 000229-3234567", f"윤년생 {RRN}", {"pii_rrn": 1}),
    # phones: mobile with -, ., space or nothing; landlines; +82
    ("연락처 010-1234-5678 로", f"연락처 {PHONE} 로", {"pii_phone": 1}),
    ("전화010.9876.5432", f"전화{PHONE}", {"pii_phone": 1}),
    ("보고싶다 연락해 010 3227 2293", f"보고싶다 연락해 {PHONE}", {"pii_phone": 1}),
    ("번호는 01012345678 이야", f"번호는 {PHONE} 이야", {"pii_phone": 1}),
    ("옛날 번호 011-234-5678", f"옛날 번호 {PHONE}", {"pii_phone": 1}),
    ("사무실 02-123-4567, 지점 031.987.6543", f"사무실 {PHONE}, 지점 {PHONE}", {"pii_phone": 2}),
    ("대표 (02) 2273-1113 번", f"대표 {PHONE} 번", {"pii_phone": 1}),
    ("인터넷전화 070-1234-5678", f"인터넷전화 {PHONE}", {"pii_phone": 1}),
    ("해외에서 +82-10-1234-5678 또는 +82 2 123 4567", f"해외에서 {PHONE} 또는 {PHONE}", {"pii_phone": 2}),
    # e-mail, also right after Hangul with no space
    ("메일 bambi.326@naver.com 로", f"메일 {EMAIL} 로", {"pii_email": 1}),
    ("보내주세요lsj4379@daum.net", f"보내주세요{EMAIL}", {"pii_email": 1}),
    ("문의: first_last+tag@mail.company.co.kr.", f"문의: {EMAIL}.", {"pii_email": 1}),
    # accounts: only after a banking word
    ("입금계좌: 국민은행 123456-01-123456 (예금주 홍길동)", f"입금계좌: 국민은행 {ACCOUNT} (예금주 홍길동)",
     {"pii_account": 1}),
    ("신한 110-123-456789 로 보내", f"신한 {ACCOUNT} 로 보내", {"pii_account": 1}),
    ("카카오뱅크 3333-01-1234567", f"카카오뱅크 {ACCOUNT}", {"pii_account": 1}),
    ("농협 301-1234-5678-91", f"농협 {ACCOUNT}", {"pii_account": 1}),
    ("계좌번호 1002123456789", f"계좌번호 {ACCOUNT}", {"pii_account": 1}),
])
def test_each_kind_replaced_and_counted(text, want, counts):
    assert replace_pii(text) == (want, counts)


def test_mixed_counts():
    text = "홍길동 900101-1234567, 010-1111-2222, 02-333-4444, a@b.kr, c@d.com, 우리은행 1002-123-456789"
    out, counts = replace_pii(text)
    assert out == f"홍길동 {RRN}, {PHONE}, {PHONE}, {EMAIL}, {EMAIL}, 우리은행 {ACCOUNT}"
    assert counts == {"pii_rrn": 1, "pii_phone": 2, "pii_email": 2, "pii_account": 1}


@pytest.mark.parametrize("text", [
    "1999년 3월 4일에 태어났다. 2000년대 초반, 1840-1858년의 일",  # years, dates, year ranges
    "날짜=2009-12-11 |확인날짜=2010.11.05 (1939-09-01/1945-05-08)",  # ISO dates in wiki citations
    "ISBN 89-7041-123-4, ISBN 978-89-7041-123-4, 9788990641175, ISSN 1225-1234",  # ISBNs and ISSNs
    "고객센터 1588-1234",  # business numbers are left (kowiki: every such string is a year range)
    "| 02 1234 5678 9999 | 031 555 1234 |",  # space-separated table cells are not landlines
    "Bundesarchiv Bild-F019521-0007, 604-555-1234",  # archive ids, a foreign number
    "출원번호 제10-2006-7013149호, 문서(No.106-01480-07), 사진 AS17-148-22727",  # patents, ids
    "편성 9562-9665-9563, 9011-9111-9112-9012",  # train set numbers in a wiki table
    "우리는 2010-2012-2014년에 세 번 우승했다",  # a banking word, but year lists are not accounts
    "1조원은 1,000,000,000,000원이고 π는 3.14159265358979이다",  # big numbers, decimals
    "12345678901234 같은 숫자",  # a bare 14-digit run without a banking word
    "901301-1234567, 990229-1234567, 000230-3123456, 850101-9123456",  # invalid dates/gender digits
    "MAIL FROM:<bob@example.com> 와 alice@example.org 는 예시 주소",  # RFC 2606 documentation domains
    "버전 1.010.1234.5678 과 좌표 0.010 1234 5678",  # numbers continuing a decimal
])
def test_non_pii_numbers_kept(text):
    assert replace_pii(text) == (text, {})


def test_no_pii_fast_path():
    assert replace_pii("") == ("", {})
    assert replace_pii("정말 재밌는 영화였어요") == ("정말 재밌는 영화였어요", {})


def test_idempotent():
    once, _ = replace_pii("010-1234-5678 a@b.kr 900101-1234567 국민 123456-01-123456")
    assert replace_pii(once) == (once, {})


# -- placeholder tokens -----------------------------------------------------------------------------------------------
def test_placeholders_shape():
    assert set(PLACEHOLDERS) == {"rrn", "phone", "email", "account"}
    assert len(set(PLACEHOLDERS.values())) == 4


@pytest.mark.parametrize("token", list(PLACEHOLDERS.values()))
def test_placeholder_properties(token):
    # unchanged by NFC and NFKC (spm normalises with nmt_nfkc), no whitespace, short
    assert unicodedata.normalize("NFC", token) == token
    assert unicodedata.normalize("NFKC", token) == token
    assert not any(c.isspace() for c in token) and len(token) <= 8
    # not a literal special token, and none inside it
    assert token not in special_literals()
    assert find_special_literal(token) is None
    # kept by the cleaner and by the special-literal removal, alone and inside text
    line = f"연락처는 {token}입니다. 다음 문장{token}."
    assert clean_text(line) == line
    assert remove_special_literals(line, 2) == (line, 0)


@pytest.mark.slow
def test_placeholders_not_split_by_kss():
    from koroberta.corpus.steps import init_kss, split_lines

    init_kss()
    line = (f"연락처는 {PHONE}입니다. 메일은 {EMAIL}로 보내 주세요! 계좌는 {ACCOUNT}예요? "
            f"주민번호 {RRN}.ㅋㅋ 좋아요{PHONE}...그래서 끝")
    sents = split_lines([line], "punct")
    assert len(sents) > 1
    for token in PLACEHOLDERS.values():
        assert sum(s.count(token) for s in sents) == line.count(token)
