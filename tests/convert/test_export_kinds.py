"""Every spm model `koroberta spm train` can make exports to an HF tokenizer with spm's ids; the others are refused.

`spm train --model-type bpe` used to be offered and accepted by spm, preprocess and train, and then failed convert's
parity check after pretraining: the export always built a Unigram tokenizer. It now builds a BPE tokenizer for a BPE
model (koroberta.convert.vocab.bpe_merges), proven here on real Korean text, tokenizer-level and through convert's
own parity check. Likewise every `normalization_rule_name` the spm config offers. Models the export cannot reproduce
(char/word, byte fallback, user-defined pieces), which only come from outside koroberta, are refused by preprocess and
convert before any work, in one line naming the model and the fix.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from koroberta.cli import main
from koroberta.convert.config import ConvertConfig
from koroberta.convert.export import convert, export_tokenizer
from koroberta.convert.vocab import resolve_vocab
from koroberta.spm.config import SpmConfig
from koroberta.spm.train import train_vocab
from koroberta.layout import SPM_SPECIALS, UNK, load_processor, load_vocab

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
#: whitespace at a line's edges and inside it, which spm strips/collapses only as ' ' (after its charsmap)
WHITESPACE = ["\u00a0", "\u3000", "\t", "\u2028", "\u1680", "\u2002", "\u200b", "\u0085", "\x0b", "\x0c", "\u202f"]
EDGES = ([w + "가x" for w in WHITESPACE] + ["가x" + w for w in WHITESPACE] + [f"가 {w} x" for w in WHITESPACE]
         + [f" {w} " for w in WHITESPACE])


def _nsmc() -> list[str]:
    with open(FIXTURES / "nsmc-tiny.tsv", encoding="utf-8", newline="") as f:
        return [row["document"] for row in csv.DictReader(f, delimiter="\t") if row["document"].strip()]


def _tricky() -> list[str]:
    from test_tokenizer_parity import TRICKY

    return TRICKY


def _differences(vocab: Path, out: Path, lines: list[str]) -> list[tuple]:
    """Export ``vocab``'s tokenizer into ``out``; the lines whose HF ids are not spm's ids + 1 (unk -> 3)."""
    from koroberta.hfcompat import import_transformers

    export_tokenizer(resolve_vocab(vocab, len(load_vocab(vocab / "spm.model").fairseq_symbols())), out, 512)
    hf = import_transformers().AutoTokenizer.from_pretrained(str(out))
    sp = load_processor(vocab / "spm.model")
    return [(l, sp.encode(l, out_type=str), hf.tokenize(l)) for l in lines
            if hf(l, add_special_tokens=False)["input_ids"] != [UNK if i == 0 else i + 1 for i in sp.encode(l)]]


def test_bpe_tokenizer_gives_spm_ids(kowiki_train_text, kowiki_line_list, tmp_path):
    vocab = train_vocab(SpmConfig(model_type="bpe", vocab_size=3000, threads=1), kowiki_train_text, tmp_path / "bpe")
    lines = [l for l in kowiki_line_list if l.strip()] + _nsmc() + _tricky() + EDGES
    bad = _differences(vocab, tmp_path / "tok", lines)
    assert not bad, f"{len(bad)}/{len(lines)} lines differ, first: {bad[0]}"
    assert json.loads((tmp_path / "tok" / "tokenizer.json").read_text(encoding="utf-8"))["model"]["type"] == "BPE"


@pytest.mark.parametrize("rule", ["nmt_nfkc", "nfkc", "nmt_nfkc_cf", "nfkc_cf", "identity"])
def test_every_normalization_rule_exports_exactly(rule, kowiki_line_list, tmp_path):
    """Before, HF stripped every Unicode space at a line's edges where spm strips ' ' only: a tab (nfkc), an NBSP
    (identity) or U+0085 (even nmt_nfkc, the default) at an edge gave other ids."""
    text = tmp_path / "train.txt"
    text.write_text("\n".join(kowiki_line_list[:800]) + "\n", encoding="utf-8")
    vocab = train_vocab(SpmConfig(vocab_size=1500, threads=1, normalization_rule_name=rule), text, tmp_path / "v")
    lines = EDGES + _tricky() + _nsmc()
    bad = _differences(vocab, tmp_path / "tok", lines)
    assert not bad, f"{rule}: {len(bad)}/{len(lines)} lines differ, first: {bad[0]}"


def test_bpe_vocab_converts_with_parity_on_korean_text(tiny_checkpoint, tiny_split, tmp_path):
    """spm bpe -> convert with its parity check on the 163 lines of the valid split (real kowiki text).

    The weights are the tiny checkpoint's (2,008 rows, trained with the Unigram fixture vocab): parity compares
    fairseq and HF running the *same* weights with the *same* vocab, so which vocab trained them does not matter to
    it. Its ``cfg.task.data`` is pointed at the BPE vocab (which holds dict.txt + spm.model as a data-bin does), as
    a checkpoint trained with it would record, since convert refuses a vocab the checkpoint was not trained with.
    """
    import torch

    vocab = train_vocab(SpmConfig(model_type="bpe", vocab_size=2000, character_coverage=0.995, threads=1),
                        tiny_split / "train.txt", tmp_path / "bpe")
    assert len(load_vocab(vocab / "spm.model").fairseq_symbols()) == 2008  # the checkpoint's rows
    obj = torch.load(tiny_checkpoint, map_location="cpu", weights_only=False)
    task = obj["cfg"]["task"]
    if isinstance(task, dict):
        task["data"] = str(vocab)
    else:
        task.data = str(vocab)
    ckpt = tmp_path / "ckpt" / "checkpoint_last.pt"
    ckpt.parent.mkdir()
    torch.save(obj, ckpt)
    m = convert(ConvertConfig(parity_lines=200, parity_sentences=4), ckpt, vocab, tmp_path / "hf",
                parity_text=tiny_split / "valid.txt")
    par = m["stats"]["parity"]
    assert par["tokenizer_model"] == "bpe" and par["checked"] is True
    assert par["token_id_lines"] == 163 and par["token_id_mismatches"] == 0
    assert par["logit_sentences"] == 4 and par["max_abs_logit_diff"] <= 1e-5
    assert "fast BPE tokenizer" in (tmp_path / "hf" / "README.md").read_text(encoding="utf-8")


def _foreign_vocab(tiny_split: Path, root: Path, **spm_options) -> Path:
    """An spm model trained outside koroberta with ``spm_options``, and a dict.txt listing its pieces."""
    import sentencepiece as spm

    root.mkdir()
    options = dict(vocab_size=1800, model_type="unigram", character_coverage=0.995, hard_vocab_limit=False)
    options.update(spm_options)
    lines = [l for l in (tiny_split / "train.txt").read_text(encoding="utf-8").splitlines() if l.strip()]
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_prefix=str(root / "spm"), num_threads=1,
                                   minloglevel=2, **SPM_SPECIALS, **options)
    sp = spm.SentencePieceProcessor(model_file=str(root / "spm.model"))
    n = sp.get_piece_size()
    (root / "dict.txt").write_text("".join(f"{sp.id_to_piece(i)} {n - i}\n" for i in range(3, n)), encoding="utf-8")
    return root


@pytest.mark.parametrize("options, needle", [
    (dict(model_type="char"), "spm model_type is char"),
    (dict(model_type="word"), "spm model_type is word"),
    (dict(byte_fallback=True), "byte_fallback"),
    # user-defined symbols are exported for unigram (the PII placeholders: tests/convert/test_user_symbols.py)
    (dict(model_type="bpe", user_defined_symbols=["[USR]"]), "spm piece 3 '[USR]' is a user-defined symbol in a bpe"),
    (dict(control_symbols=["[CTL]"]), "spm piece 3 '[CTL]' is a control piece"),
])
def test_models_the_export_cannot_reproduce_are_refused_at_preprocess(tiny_split, tmp_path, capsys, options, needle):
    vocab = _foreign_vocab(tiny_split, tmp_path / "v", **options)
    out = tmp_path / "bin"
    assert main(["preprocess", "run", str(tiny_split), str(vocab), str(out)]) == 2
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"error: {vocab / 'spm.model'}: ") and needle in lines[0], lines[0]
    assert "— fix: retrain it with `koroberta spm train`" in lines[0]
    assert not out.exists()


def test_char_model_is_refused_at_convert(tiny_checkpoint, tiny_split, tmp_path, capsys):
    vocab = _foreign_vocab(tiny_split, tmp_path / "v", model_type="char")
    out = tmp_path / "hf"
    assert main(["convert", str(tiny_checkpoint), str(out), "--vocab-dir", str(vocab), "--no-parity"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"error: {vocab / 'spm.model'}: spm model_type is char" in err, err
    assert not out.exists()
