"""The learning check of `koroberta run`'s summary: masked-token accuracy/loss vs the unigram baseline."""

import numpy as np
import pytest
import torch

from koroberta.eval.mlm import masked_lm_check, unigram_counts


def test_unigram_counts_match_fairseqs_own_reader(tiny_databin):
    from fairseq.data import Dictionary, data_utils

    d = Dictionary.load(str(tiny_databin / "dict.txt"))
    ds = data_utils.load_indexed_dataset(str(tiny_databin / "train"), d, "mmap")
    want = np.bincount(np.concatenate([ds[i].numpy() for i in range(len(ds))]), minlength=len(d) + 1)
    got = unigram_counts(tiny_databin, len(d), chunk=1000)  # small chunks: the chunk loop is exercised
    assert got.tolist() == want.tolist()


def test_check_is_deterministic_and_consistent(eval_hf, tiny_split, tiny_databin):
    a = masked_lm_check(eval_hf, tiny_split / "valid.txt", tiny_databin, max_lines=40, max_length=64)
    b = masked_lm_check(eval_hf, tiny_split / "valid.txt", tiny_databin, max_lines=40, max_length=64)
    assert a == b and a.masked > 50 and a.lines == 40
    # the unigram baseline, recomputed by hand on the same masked positions
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(eval_hf))
    lines = [l for l in (tiny_split / "valid.txt").read_text(encoding="utf-8").splitlines() if l.strip()][:40]
    counts = unigram_counts(tiny_databin, len(tok) - 1).astype(float)
    counts[tok.all_special_ids] = 0
    gen = torch.Generator().manual_seed(0)
    gold = []
    for start in range(0, len(lines), 32):
        enc = tok(lines[start:start + 32], truncation=True, max_length=64, padding=True, return_tensors="pt")
        ok = enc["attention_mask"].bool()
        for s in tok.all_special_ids:
            ok &= enc["input_ids"] != s
        pick = (torch.rand(enc["input_ids"].shape, generator=gen) < 0.15) & ok
        gold += enc["input_ids"][pick].tolist()
    assert len(gold) == a.masked
    top = int(counts.argmax())
    assert a.unigram_accuracy == pytest.approx(sum(g == top for g in gold) / len(gold))
    p = (counts + 1) / (counts.sum() + len(counts))
    assert a.unigram_loss_bits == pytest.approx(float(-np.log2(p[gold]).mean()))
    assert a.frequent_ids[0] == top and len(a.frequent_ids) == 20


# -- the check's model fields are what the model predicts: a model whose logits are known by construction ------------
def _constant_logits_model(src, dst, bias):
    """``src``'s export with the LM head's LayerNorm zeroed: every position's logits are then exactly
    ``lm_head.bias`` (= ``bias``), whatever the input."""
    import shutil

    from transformers import AutoModelForMaskedLM

    model = AutoModelForMaskedLM.from_pretrained(str(src), dtype=torch.float32)
    with torch.no_grad():
        model.lm_head.layer_norm.weight.zero_()
        model.lm_head.layer_norm.bias.zero_()
        model.lm_head.bias.copy_(bias)
        model.lm_head.decoder.bias.copy_(bias)
    model.save_pretrained(str(dst))
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(src / f, dst / f)
    return dst


def test_model_fields_are_what_the_model_predicts(eval_hf, tiny_split, tiny_databin, tmp_path):
    """Uniform logits: loss = log2(V) exactly and the argmax is id 0 (<s>, never masked): accuracy 0. One token
    ahead by c: the model always predicts it, so with that token = the unigram top its accuracy IS the unigram
    accuracy, and its loss is ua * -log2(p_top) + (1 - ua) * -log2(p_other), computed here by hand."""
    import math

    from transformers import AutoConfig

    v = AutoConfig.from_pretrained(str(eval_hf)).vocab_size
    kw = dict(max_lines=40, max_length=64)
    flat = masked_lm_check(_constant_logits_model(eval_hf, tmp_path / "flat", torch.zeros(v)),
                           tiny_split / "valid.txt", tiny_databin, **kw)
    assert flat.accuracy == 0.0 and abs(flat.loss_bits - math.log2(v)) < 1e-4
    top = flat.frequent_ids[0]
    c = 5.0
    bias = torch.zeros(v)
    bias[top] = c
    peak = masked_lm_check(_constant_logits_model(eval_hf, tmp_path / "peak", bias), tiny_split / "valid.txt",
                           tiny_databin, **kw)
    ua = peak.unigram_accuracy
    assert peak.masked == flat.masked and peak.accuracy == ua > 0
    z = math.exp(c) + v - 1
    want = ua * -math.log2(math.exp(c) / z) + (1 - ua) * -math.log2(1 / z)
    assert abs(peak.loss_bits - want) < 1e-4
    assert "NOT better" in peak.describe()  # equal accuracy is not "learned beyond token frequencies"


@pytest.mark.parametrize("acc,loss,verdict", [
    (0.30, 6.0, "learned beyond token frequencies"),   # better on both
    (0.30, 9.0, "NOT better than the unigram baseline"),  # more accurate, but a worse loss
    (0.05, 6.0, "NOT better than the unigram baseline"),  # a better loss, but no more accurate
    (0.10, 8.0, "NOT better than the unigram baseline"),  # exactly the baseline
])
def test_verdict_line_on_both_sides(acc, loss, verdict):
    from koroberta.eval.mlm import MaskedLMCheck

    line = MaskedLMCheck(lines=10, masked=100, accuracy=acc, loss_bits=loss, unigram_accuracy=0.10,
                         unigram_loss_bits=8.0, unigram_top_token="의", frequent_ids=[5]).describe()
    assert line.endswith(verdict) and f"accuracy {acc:.3f} vs 0.100" in line
