"""The id layout contract: fairseq id = spm id + 1, dict padded with fillers, <mask> last, HF vocab identical."""

import pytest

from koroberta.errors import InputError
from koroberta.layout import (FAIRSEQ_SPECIALS, MASK, OFFSET, Vocab, check_dict_matches, check_pieces,
                                  load_vocab, n_fillers)


def test_n_fillers_makes_multiple_of_pad_to():
    for v in range(10, 200):
        for pad in (1, 8, 64):
            total = 4 + (v - 3) + n_fillers(v, pad) + 1
            assert total % pad == 0 and n_fillers(v, pad) < pad


def test_fairseq_dictionary_agrees_with_spm(tiny_vocab):
    """Load dict.txt with fairseq itself, add <mask> like the masked_lm task does, and compare every id."""
    import sentencepiece as spm
    from fairseq.data import Dictionary

    sp = spm.SentencePieceProcessor(model_file=str(tiny_vocab / "spm.model"))
    vocab = load_vocab(tiny_vocab / "spm.model", pad_to=8)
    d = Dictionary.load(str(tiny_vocab / "dict.txt"))
    mask = d.add_symbol(MASK)
    assert len(d) % 8 == 0 and mask == vocab.mask_id == len(d) - 1
    assert [d[i] for i in range(len(d))] == vocab.fairseq_symbols()
    for i in range(3, sp.get_piece_size()):
        assert d.index(sp.id_to_piece(i)) == i + OFFSET
    assert (d.bos(), d.pad(), d.eos(), d.unk()) == (0, 1, 2, 3)
    assert [d[i] for i in range(4)] == list(FAIRSEQ_SPECIALS)
    line = "대한민국의 수도는 서울특별시이다."
    ids = d.encode_line(" ".join(sp.encode(line, out_type=str)), append_eos=False, add_if_not_exist=False)
    assert ids.tolist() == [i + OFFSET for i in sp.encode(line)]


def test_check_dict_matches(tiny_vocab, tmp_path):
    v = check_dict_matches(tiny_vocab / "dict.txt", tiny_vocab / "spm.model")
    assert v.pad_to == 8 and len(v.fairseq_symbols()) % 8 == 0
    lines = (tiny_vocab / "dict.txt").read_text(encoding="utf-8").splitlines()
    swapped = tmp_path / "dict.txt"
    swapped.write_text("\n".join([lines[1], lines[0], *lines[2:]]) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="does not belong to"):
        check_dict_matches(swapped, tiny_vocab / "spm.model")
    freq = tmp_path / "freq.txt"  # KoRoBERTa-style: spm ids as symbols
    freq.write_text("".join(f"{i} {1000 - i}\n" for i in range(3, 50)))
    with pytest.raises(InputError, match="first difference at dict line 1"):
        check_dict_matches(freq, tiny_vocab / "spm.model")


@pytest.mark.parametrize("pieces,needle", [
    (["<pad>", "<s>", "</s>", "a"], "specials"),
    (["<unk>", "<s>", "</s>", "▁a", "<mask>"], "reserved fairseq symbol"),
    (["<unk>", "<s>", "</s>", "▁a", "madeupword0000"], "reserved fairseq symbol"),
    (["<unk>", "<s>", "</s>", "a\u00a0b"], "whitespace"),
    (["<unk>", "<s>", "</s>", "▁a", "▁a"], "duplicate"),
])
def test_check_pieces_refuses_id_shifting_models(pieces, needle):
    with pytest.raises(InputError, match=needle):
        check_pieces(pieces, "m.model")


def test_dict_text_counts_keep_spm_order():
    v = Vocab(pieces=("<unk>", "<s>", "</s>", "▁가", "나"), scores=(0, 0, 0, -1, -2), pad_to=8)
    assert v.dict_text().splitlines() == ["▁가 2", "나 1", "madeupword0000 0"]
    assert v.fairseq_symbols()[-1] == MASK and len(v.fairseq_symbols()) == 8
