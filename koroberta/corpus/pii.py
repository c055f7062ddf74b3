"""Personal data in Korean text -> placeholder tokens (the web profile of :mod:`koroberta.corpus.filters`).

Four kinds, replaced in this order (an earlier kind's digits are gone before a later pattern looks):

* ``rrn`` — 주민등록번호 (and the same-shaped 외국인등록번호): ``YYMMDD-GNNNNNN``. The date part must be a real
  calendar date (month 01-12, day valid for the month, Feb 29 only in a leap year of the century ``G`` gives) and
  ``G`` 1-8 (1-4 citizens, 5-8 foreign residents). The check digit is **not** required: numbers issued since
  October 2020 have a random tail and no valid check digit, so a checksum test would miss exactly the newest ones.
  The date test alone rejects 97 % of random digit strings of that shape (measured by bench/corpus_filters.py);
  neither the kowiki shard nor the reviews hold a single string of that shape.
* ``phone`` — mobile ``01[016789]`` with ``-``/``.``/space separators used consistently or none (``010-1234-5678``,
  ``010 1234 5678``, ``01012345678``); landlines with a real area code (``02``, ``031``-``033``, ``041``-``044``,
  ``051``-``055``, ``061``-``064``, ``070``, ``050x``, ``080``), written ``02-123-4567``, ``02.123.4567`` or
  ``(02) 123-4567`` (not with spaces: space-separated digit groups are table cells); and ``+82`` forms.
  Business numbers ``15xx-xxxx``/``16xx``/``18xx`` are **not** replaced: 270 of the 275 strings of that shape in
  the kowiki shard are year ranges (``1840-1858``) and only one is a phone number (a public hotline).
* ``email`` — ``local@domain.tld``. The documentation domains ``example.com/.org/.net`` (RFC 2606, protocol examples
  in kowiki) are left alone.
* ``account`` — bank-account-like digit groups (``110-123-456789``, ``123456-01-123456``, ``3333-01-1234567``, or a
  bare 10-14 digit run) **only after a banking word** (계좌, 입금, 예금주, 은행, a bank's name ...) at most 20
  characters earlier. Without that context the 15 account-shaped numbers of the kowiki shard are archive, document,
  patent, star-catalogue and NASA photo ids, a North American number in a markup example and two historical
  (1968-format) registration numbers — none a bank account (bench/results/corpus_filters.md).

Placeholders (:data:`PLACEHOLDERS`) are short Hangul words in ASCII angle brackets, e.g. ``<전화번호>``: unchanged by
NFC and NFKC (Hangul syllables and ``<>`` have no compatibility mapping, so spm's ``nmt_nfkc`` keeps them), without
whitespace, not one of the literal special tokens (``<s> <pad> </s> <unk> <mask>``) and not containing one, kept by
``clean_text``, never split by kss (no sentence-final punctuation inside), and absent from the real data (0
occurrences in the kowiki shard and the 150k reviews). Later work makes them spm user-defined symbols.

All regexes are compiled at import: :func:`replace_pii` runs once per document in pool workers.
"""

from __future__ import annotations

import re

#: kind -> placeholder token (the counter for a kind is ``pii_<kind>``)
PLACEHOLDERS: dict[str, str] = {
    "rrn": "<주민번호>",
    "phone": "<전화번호>",
    "email": "<이메일>",
    "account": "<계좌번호>",
}

# A number must not continue a longer token: no digit, hyphen, dot, plus or ASCII letter right before it (Hangul is
# allowed: "연락처010-..." is common), and no digit or "-digit" right after it. The "before" test is written as a
# lookbehind *after* the first character (``0(?<![...]0)``), not before it: a pattern that starts with a plain
# character lets ``re`` skip ahead to candidate positions in C — 9x faster on kowiki than a leading lookbehind
# (13 -> 122 M characters/s for the phone pattern, same matches).
_NOT_BEFORE = r"[0-9A-Za-z.+\-]"
_POST = r"(?![0-9]|-[0-9])"

RRN = re.compile(r"(\d(?<!" + _NOT_BEFORE + r"\d)\d)(\d{2})(\d{2}) ?- ?([1-8])\d{6}" + _POST)
_DAYS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

# area codes without their leading 0: 02, 031-033, 041-044, 051-055, 061-064, 070, 0502-0508, 080
_AREA0 = r"(?:2|3[1-3]|4[1-4]|5[1-5]|6[1-4]|70|50[2-8]|80)"
PHONE = re.compile(
    # +82, optional (0), then a mobile or area code without its leading 0
    r"\+(?<![0-9A-Za-z]\+)82[-. ]?(?:\(0\) ?)?(?:1[016789]|2|3[1-3]|4[1-4]|5[1-5]|6[1-4]|70)[-. ]?\d{3,4}[-. ]?\d{4}"
    + _POST
    # mobile: the same separator twice, or none; landline: "-" or "." required, the same one twice (bare 9-10 digit
    # runs starting with 0 are too ambiguous, and space-separated digit groups are table cells: "02 1234 5678 9999")
    + r"|0(?<!" + _NOT_BEFORE + r"0)(?:1[016789](?P<sep>[-. ]?)\d{3,4}(?P=sep)|" + _AREA0
    + r"(?P<lsep>[-.])\d{3,4}(?P=lsep))\d{4}" + _POST
    # landline with the area code in parentheses: (02) 123-4567
    + r"|\((?<!" + _NOT_BEFORE + r"\()0" + _AREA0 + r"\) ?\d{3,4}-\d{4}" + _POST)

_LOCAL = r"[A-Za-z0-9._%+\-]"
EMAIL = re.compile(_LOCAL + r"(?<!" + _LOCAL + _LOCAL + r")" + _LOCAL + r"*@"
                    r"([A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,})(?![A-Za-z0-9\-])")
DOC_DOMAINS = frozenset({"example.com", "example.org", "example.net"})

_BANK_WORDS = (r"계좌|입금|송금|예금주|무통장|은행|뱅크|농협|국민|신한|우리|하나|기업|우체국|새마을금고|신협|수협|씨티|"
               r"SC제일|KB|NH|IBK")
ACCOUNT = re.compile(r"(?:" + _BANK_WORDS + r")[^\n0-9]{0,20}?" + r"(?<![0-9\-])(\d{2,6}(?:-\d{2,7}){1,4}|\d{10,14})"
                      + r"(?![0-9]|-[0-9])")
_BANK_HINT = re.compile(_BANK_WORDS)


def valid_rrn_date(yy: str, mm: str, dd: str, g: str) -> bool:
    m, d = int(mm), int(dd)
    if not (1 <= m <= 12 and 1 <= d <= _DAYS[m]):
        return False
    if m == 2 and d == 29:  # the digit after the hyphen gives the century: 1, 2, 5, 6 -> 1900s; 3, 4, 7, 8 -> 2000s
        y = (1900 if g in "1256" else 2000) + int(yy)
        return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    return True


def account_digits_ok(num: str) -> bool:
    groups = num.split("-")
    n = sum(len(g) for g in groups)
    # 10-14 digits covers every Korean bank's format (3-3-6 ... 3-6-2-3); all-4-digit groups are year lists
    # ("2010-2012-2014"), not an account format
    return 10 <= n <= 14 and not (len(groups) > 1 and all(len(g) == 4 for g in groups))


def replace_pii(text: str) -> tuple[str, dict[str, int]]:
    """``text`` with personal data replaced by :data:`PLACEHOLDERS`, and ``{"pii_<kind>": count}`` for the kinds
    replaced (kinds with no match are absent, so counters from many documents can be summed key by key)."""
    counts: dict[str, int] = {}
    # Fast paths: every kind but e-mail needs a digit; e-mail needs "@". str methods scan in C.
    has_at = "@" in text
    if has_at or has_digit_run(text):
        def rrn(m: re.Match) -> str:
            if not valid_rrn_date(m.group(1), m.group(2), m.group(3), m.group(4)):
                return m.group()
            counts["pii_rrn"] = counts.get("pii_rrn", 0) + 1
            return PLACEHOLDERS["rrn"]

        text = RRN.sub(rrn, text)
        text, n = PHONE.subn(PLACEHOLDERS["phone"], text)
        if n:
            counts["pii_phone"] = n
        if has_at:
            def email(m: re.Match) -> str:
                if m.group(1).lower() in DOC_DOMAINS:
                    return m.group()
                counts["pii_email"] = counts.get("pii_email", 0) + 1
                return PLACEHOLDERS["email"]

            text = EMAIL.sub(email, text)
        if _BANK_HINT.search(text):
            def account(m: re.Match) -> str:
                num = m.group(1)
                if not account_digits_ok(num):
                    return m.group()
                counts["pii_account"] = counts.get("pii_account", 0) + 1
                s, e = m.span(1)
                return m.group()[: s - m.start()] + PLACEHOLDERS["account"] + m.group()[e - m.start():]

            text = ACCOUNT.sub(account, text)
    return text, counts


_DIGIT_RUN = re.compile(r"\d{3}")


def has_digit_run(text: str) -> bool:
    # every number kind has a group of >= 3 digits; a document without one (most reviews) skips all regexes
    return _DIGIT_RUN.search(text) is not None


__all__ = ["PLACEHOLDERS", "replace_pii"]
