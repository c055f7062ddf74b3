"""PII placeholders as spm user-defined symbols (issue 22): one piece each, the same id in spm, fairseq's dict and
the exported HF tokenizer, where they are ordinary vocabulary entries (not added tokens), whatever text surrounds
them. The end-to-end export of a multi-source corpus with PII is tests/convert/test_multi_source_export.py."""

from __future__ import annotations

import random

import pytest

from koroberta.convert.vocab import build_tokenizer, resolve_vocab
from koroberta.corpus.pii import PLACEHOLDERS, replace_pii
from koroberta.errors import ConfigError, InputError
from koroberta.layout import FIRST_PIECE, OFFSET, UNK, USER_SYMBOL_SCORE, load_vocab, read_dict_symbols
from koroberta.spm.config import SpmConfig
from koroberta.spm.train import train_vocab

SYMBOLS = list(PLACEHOLDERS.values())
# contexts a placeholder meets in real text: glued to Hangul on either side, in brackets, twice in a row, at the
# start and end of a line, and the placeholder's own words and brackets elsewhere (must not be pulled in)
CONTEXTS = ["연락처{}로 문의", "({})", "{}{}", "{} 입니다", "번호는 {}", "전화번호를 <전화> 번호 > {}", "<{}>", "a{}b",
            "메일: {} 또는 {}", "계좌 {}(국민)로 입금"]


def _lines(kowiki_line_list: list[str], n: int = 2400) -> list[str]:
    """Real kowiki lines; every fifth gets a placeholder put between two of its words (as replace_pii leaves
    them), so spm sees them in training as the corpus gives them."""
    rng = random.Random(5)
    out = []
    for i, line in enumerate(x for x in kowiki_line_list if x.strip()):
        if i >= n:
            break
        if i % 5 == 0:
            words = line.split(" ")
            words.insert(rng.randrange(len(words) + 1), rng.choice(SYMBOLS) + rng.choice(["", "로", "입니다", ")"]))
            line = " ".join(words)
        out.append(line)
        if i % 7 == 0:
            # the placeholders' parts as ordinary text, so that "<" ">" and the words are cheap pieces of their own and
            # a wrong score for the whole symbol would let a split win (the test below could not fail otherwise)
            out.append(rng.choice(["x < y 이고 y > z 이다.", "전화번호 안내", "주민번호 발급", "이메일 주소",
                                   "계좌번호 확인", "<전화> <이메일> <계좌> <주민> 번호"]))
    return out


@pytest.fixture(scope="module")
def pii_vocab(tmp_path_factory, kowiki_line_list):
    lines = _lines(kowiki_line_list)
    text = tmp_path_factory.mktemp("pii_text") / "train.txt"
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = train_vocab(SpmConfig(vocab_size=3000, threads=1, user_symbols=SYMBOLS), text,
                      tmp_path_factory.mktemp("pii_spm") / "spm")
    return out, lines


def test_placeholders_are_the_first_pieces_and_dict_rows(pii_vocab):
    out, _ = pii_vocab
    vocab = load_vocab(out / "spm.model")
    assert vocab.user_symbols == tuple(SYMBOLS)
    assert list(vocab.pieces[FIRST_PIECE:FIRST_PIECE + len(SYMBOLS)]) == SYMBOLS
    # fairseq id = spm id + 1: dict.txt's first lines are the placeholders (fairseq prepends its 4 specials)
    assert read_dict_symbols(out / "dict.txt")[:len(SYMBOLS)] == SYMBOLS


def test_hf_vocab_lists_them_as_ordinary_entries(pii_vocab):
    out, _ = pii_vocab
    ev = resolve_vocab(out, len(load_vocab(out / "spm.model").fairseq_symbols()))
    tok = build_tokenizer(ev)
    vocab = tok.get_vocab(with_added_tokens=False)
    added = {t.content for t in tok.get_added_tokens_decoder().values()}
    for k, s in enumerate(SYMBOLS):
        assert vocab[s] == FIRST_PIECE + OFFSET + k  # fairseq id 4, 5, ...
        assert s not in added
        assert dict(ev.hf_vocab)[s] == USER_SYMBOL_SCORE


def test_one_piece_with_one_id_everywhere_and_hf_equals_spm(pii_vocab):
    import sentencepiece as spm

    out, lines = pii_vocab
    sp = spm.SentencePieceProcessor(model_file=str(out / "spm.model"))
    symbols = load_vocab(out / "spm.model").fairseq_symbols()
    tok = build_tokenizer(resolve_vocab(out, len(symbols)))
    row = {s: i for i, s in enumerate(symbols)}

    def fairseq_ids(x: str) -> list[int]:  # what preprocess + fairseq's Dictionary make of the line
        return [row.get(p, UNK) for p in sp.encode(x, out_type=str)]

    probes = [c.format(*([s] * c.count("{}"))) for c in CONTEXTS for s in SYMBOLS]
    # what replace_pii leaves in real sentences, so the test covers the corpus's own spelling of them
    replaced = [replace_pii(t)[0] for t in ("문의 010-1234-5678 로", "메일은 hong.gd@naver.com 입니다",
                                            "주민번호 900101-1234567", "국민은행 계좌 123456-01-123456 로 입금")]
    assert [sum(s in r for s in SYMBOLS) for r in replaced] == [1, 1, 1, 1]
    probes += replaced
    mismatches = [x for x in lines + probes if fairseq_ids(x) != tok.encode(x, add_special_tokens=False).ids]
    assert mismatches == []
    for p in probes:
        pieces = sp.encode(p, out_type=str)
        for k, s in enumerate(SYMBOLS):
            # every occurrence of the placeholder is exactly one piece, the user symbol itself
            assert pieces.count(s) == p.count(s), (p, pieces)
            assert sp.piece_to_id(s) == FIRST_PIECE + k
    # spm's normaliser leaves them as they are (it only adds the word-boundary mark in front)
    assert [sp.normalize(f"가{s}나") for s in SYMBOLS] == [f"\u2581가{s}나" for s in SYMBOLS]


def test_bad_user_symbols_are_one_line():
    with pytest.raises(ConfigError, match="whitespace"):
        SpmConfig(user_symbols=["<전화 번호>"])
    with pytest.raises(ConfigError, match="reserved fairseq symbol '<mask>'"):
        SpmConfig(user_symbols=["x<mask>"])
    with pytest.raises(ConfigError, match="model_type: unigram"):
        SpmConfig(user_symbols=SYMBOLS, model_type="bpe")


def test_a_bpe_model_with_user_symbols_is_refused_by_the_export(tmp_path, kowiki_line_list):
    """A model made outside koroberta (spm's own trainer) with user symbols and BPE: refused in one line."""
    import sentencepiece as spm

    from koroberta.layout import SPM_SPECIALS

    lines = _lines(kowiki_line_list, 2400)
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_prefix=str(tmp_path / "spm"), vocab_size=3000,
                                   model_type="bpe", user_defined_symbols=SYMBOLS, num_threads=1, minloglevel=2,
                                   **SPM_SPECIALS)
    with pytest.raises(InputError, match="user-defined symbol in a bpe model"):
        load_vocab(tmp_path / "spm.model")
