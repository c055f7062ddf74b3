"""The exported HF tokenizer gives spm's ids (+1) on text where the two used to disagree.

Two mechanisms made them drift before they were fixed (see koroberta/spm/train.py SCORE_QUANTUM and
koroberta/convert/vocab.py build_tokenizer): float rounding breaking exact Viterbi ties differently ("그래프1000"),
and spm composing compatibility-jamo *sequences* ("ㅇㅣ" -> "이") that HF's per-grapheme charsmap left apart.

Known residual (documented in build_tokenizer): a precomposed syllable directly followed by a compatibility letter
that only exists as a final consonant ("자료ㄳ") — spm keeps "료" + "ᆪ", NFC composes "룏". Not seen in 150k NSMC
reviews or in kowiki text; the convert stage's parity check reports it if a user's valid text has it.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from koroberta.layout import UNK  # spm <unk> (id 0) is fairseq/HF <unk> (id 3); every other piece is spm id + 1

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

TRICKY = [
    "그래서 그래프1000과 맞먹는 성능을 보여주면서, 필기감도 비슷하다.",
    "예전에 단종된 상태로 제품명은 B1000이다.",
    "시간끌죠ㅎㅎㅇㅣ제 진짜 보고싶지도 않네요.. 정도껏해야지ㅡㅡ",
    "전면부 로고가 ㅡㅇㅡ모양에서 검은색으로",
    "ㅋㅋㅋㅋ ㅠㅠ ㅎㅏ 진짜 ㄱㅏ ㄱㅏㄳ ㄳㄳ",
    "全角ＡＢＣ　１２３　～！ ① ㈜ ㎏ Ⅳ ﬁ",
    "nbsp\u00a0here\u3000ideographic  double  spaces ",
    "수식 1,000,000원과 2020년 10월 10일 10:10",
]


def _nsmc_docs() -> list[str]:
    with open(FIXTURES / "nsmc-tiny.tsv", encoding="utf-8", newline="") as f:
        return [row["document"] for row in csv.DictReader(f, delimiter="\t") if row["document"].strip()]


@pytest.fixture(scope="module")
def tokenizers(kowiki_vocab, tmp_path_factory):
    import sentencepiece as spm

    from koroberta.convert.export import export_tokenizer
    from koroberta.hfcompat import import_transformers
    from koroberta.convert.vocab import resolve_vocab
    from koroberta.layout import load_vocab

    rows = len(load_vocab(kowiki_vocab / "spm.model").fairseq_symbols())
    out = tmp_path_factory.mktemp("tok")
    export_tokenizer(resolve_vocab(kowiki_vocab, rows), out, model_max_length=512)
    hf = import_transformers().AutoTokenizer.from_pretrained(str(out))
    sp = spm.SentencePieceProcessor(model_file=str(kowiki_vocab / "spm.model"))
    return sp, hf


def test_scores_are_on_the_grid(kowiki_vocab):
    import sentencepiece as spm

    from koroberta.spm.train import SCORE_QUANTUM

    sp = spm.SentencePieceProcessor(model_file=str(kowiki_vocab / "spm.model"))
    scores = [sp.get_score(i) for i in range(3, sp.get_piece_size())]
    assert all(s / SCORE_QUANTUM == round(s / SCORE_QUANTUM) for s in scores)
    assert len(set(scores)) > 100  # still a real unigram model, not collapsed


@pytest.mark.parametrize("source", ["tricky", "nsmc", "kowiki"])
def test_hf_ids_equal_spm_ids_plus_one(tokenizers, kowiki_line_list, source):
    sp, hf = tokenizers
    lines = {"tricky": TRICKY, "nsmc": _nsmc_docs(), "kowiki": [l for l in kowiki_line_list if l]}[source]
    bad = [(l, sp.encode(l, out_type=str), hf.tokenize(l)) for l in lines
           if hf(l, add_special_tokens=False)["input_ids"] != [UNK if i == 0 else i + 1 for i in sp.encode(l)]]
    assert not bad, f"{len(bad)}/{len(lines)} lines differ, first: {bad[0]}"
