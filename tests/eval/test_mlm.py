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
