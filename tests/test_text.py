import unicodedata

from koroberta.text import clean_text


def test_every_whitespace_class_becomes_one_space():
    ws = ["\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0", "\u1680",
          *[chr(c) for c in range(0x2000, 0x200B)], "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"]
    for w in ws:
        assert clean_text(f"{w}가{w}{w}나{w}") == "가 나", repr(w)


def test_controls_and_zero_width_removed():
    s = "가\u200b나\u200c다\u200d라\u2060마\ufeff바\x00\x07\x7f\x9b사\u00ad아"
    assert clean_text(s) == "가나다라마바사아"


def test_nfc_composition():
    decomposed = "\u1100\u1161\u11a8"  # 각 as conjoining jamo
    out = clean_text(decomposed + " e\u0301")
    assert out == "각 é"
    assert unicodedata.is_normalized("NFC", out)


def test_idempotent_and_plain_text_unchanged():
    s = "대한민국(大韓民國)은 동아시아의 한반도 남부에 있는 나라이다."
    assert clean_text(s) == s
    assert clean_text(clean_text("  a \u3000 b  ")) == "a b"
