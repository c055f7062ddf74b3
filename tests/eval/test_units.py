"""eval pieces without a model: metrics, piece/character alignment, batching, model card, config checks."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from koroberta.errors import ConfigError, InputError
from koroberta.eval.config import EvalConfig
from koroberta.eval.card import BEGIN, END, update_card
from koroberta.eval.loop import IGNORE, length_batches
from koroberta.eval.metrics import bio_spans, classification, regression, summarize, token_classification
from koroberta.eval.readers import NER_TAGS
from koroberta.eval.tasks import char_tags, piece_labels


def test_bio_spans_strict():
    assert bio_spans(["B-PS", "I-PS", "O", "B-LC", "B-LC", "I-OG", "I-LC"]) == [(0, 2, "PS"), (3, 4, "LC"),
                                                                                  (4, 5, "LC")]
    assert bio_spans(["I-PS", "I-PS"]) == []  # no B-: no entity in strict mode


def test_entity_and_char_f1():
    gold = [["B-PS", "I-PS", "O", "B-LC"], ["B-QT", "O"]]
    pred = [["B-PS", "I-PS", "O", "B-OG"], ["B-QT", "I-QT"]]
    m = token_classification(pred, gold)
    # PS right, LC missed, OG spurious, QT wrong length -> per type F1: PS 1, LC 0, OG 0, QT 0
    assert m["entity_f1"] == pytest.approx(1 / 4)
    assert m["entity_f1_micro"] == pytest.approx(2 * (1 / 3) * (1 / 3) / (2 / 3))  # TP 1, FP 2, FN 2
    perfect = token_classification(gold, gold)
    assert perfect["entity_f1"] == perfect["char_f1"] == 1.0
    # char level: B-OG predicted where gold has none -> F1(B-LC)=0, F1(B-OG)=0, F1(I-QT)=0; 9 other tags 1 (KLUE's
    # zero_division=1 for tags absent on both sides)
    assert m["char_f1"] == pytest.approx(9 / 12)


def test_classification_and_regression():
    c = classification([1, 1, 0, 0], [1, 0, 0, 1], 2)
    assert c["accuracy"] == 0.5 and c["f1"] == 0.5
    assert classification([0, 1, 2], [0, 1, 1], 3)["f1"] == pytest.approx((1 + 2 / 3 + 0) / 3, abs=1e-6)
    r = regression([0.5, 2.0, 3.5, 4.9], [1.0, 2.5, 3.0, 4.0])
    assert r["pearson"] > 0.9 and r["spearman"] == 1.0 and r["f1"] == 1.0
    assert regression([3.1, 3.2, 2.0], [1.0, 3.0, 4.0])["f1"] == pytest.approx(0.5)  # TP 1, FP 1, FN 1
    assert regression([2.0, 2.0, 2.0], [1.0, 3.0, 4.0])["pearson"] is None  # undefined, not NaN in JSON


def test_summarize():
    s = summarize([0.5, 0.7, 0.9])
    assert s["mean"] == pytest.approx(0.7) and s["std"] == pytest.approx(0.2)  # sample std (ddof=1)
    assert summarize([0.4])["std"] == 0.0 and summarize([0.4, None])["mean"] is None


def test_alignment_round_trip():
    # offsets as the exported fast tokenizer gives them: "▁영" owns the space before the word; "▁"(0,1) and an
    # <unk> over (0,2) share a character; a double space leaves one space unowned
    text = "특히 영동고속도로  강릉"
    tags = ["O", "O", "O", "B-LC", "I-LC", "I-LC", "I-LC", "I-LC", "I-LC", "O", "O", "B-LC", "I-LC"]
    offs = [(0, 0), (0, 2), (2, 4), (4, 5), (5, 7), (7, 9), (9, 10), (10, 12), (12, 13), (0, 0)]
    ids = [NER_TAGS.index(t) for t in tags]
    labels = piece_labels(text, ids, offs)
    assert [None if l == IGNORE else NER_TAGS[l] for l in labels] == [
        None, "O", "B-LC", "I-LC", "I-LC", "I-LC", None, "B-LC", "I-LC", None]
    assert char_tags(text, [NER_TAGS[l] if l != IGNORE else "O" for l in labels], offs) == tags
    # a space inside an entity is I-X only when the entity goes on after it
    assert char_tags("가 나", ["B-PS", "I-PS"], [(0, 1), (1, 3)]) == ["B-PS", "I-PS", "I-PS"]
    assert char_tags("가 나", ["B-PS", "B-PS"], [(0, 1), (1, 3)]) == ["B-PS", "O", "B-PS"]
    assert char_tags("ㅋㅋ", ["B-QT", "O"], [(0, 1), (0, 2)]) == ["B-QT", "I-QT"]  # 2nd piece only continues


def test_length_batches():
    lengths = [random.Random(0).randint(1, 60) for _ in range(203)]
    b1 = length_batches(lengths, 8, random.Random(5), window=4)
    assert len(b1) == 26 and sorted(i for b in b1 for i in b) == list(range(203))
    assert b1 == length_batches(lengths, 8, random.Random(5), window=4)  # seeded
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in b1) / len(b1)
    assert spread < 20  # grouped by length (random batches of 8 over 1..60 spread ~45)


METRICS = {"task": "klue-sts", "title": "KLUE-STS", "metrics": ["pearson", "f1"], "seeds": [1, 2],
           "device": "cpu", "precision": "fp32", "dev_source": "file",
           "data": {"train": {"file": "t.json", "sha256": "a" * 64, "examples": 12},
                    "dev": {"file": "d.json", "sha256": "b" * 64, "examples": 6}},
           "settings": {"epochs": 1, "batch_size": 4, "lr": 1e-3, "warmup_ratio": 0.1, "weight_decay": 0.0,
                        "grad_clip": 1.0, "max_length": 64, "max_train_rows": 0, "max_eval_rows": 0},
           "summary": {"dev": {"pearson": {"mean": 0.5, "std": 0.1, "values": [0.4, 0.6]},
                               "f1": {"mean": None, "std": None, "values": [0.5, None]}}}}


def test_card_update_idempotent_and_per_task():
    card = "---\nlanguage: ko\n---\n\n# model\n\ntext\n"
    p = Path("README.md")
    one = update_card(card, METRICS, path=p)
    assert one.startswith(card) and one.count(BEGIN) == one.count(END) == 1
    assert "| dev | pearson | 50.00 ± 10.00 | 40.00, 60.00 |" in one and "| dev | f1 | n/a | 50.00, n/a |" in one
    assert "sha256 `" + "a" * 64 + "`" in one and "seeds: 1, 2 (2 runs)" in one
    assert update_card(one, METRICS, path=p) == one  # same task again: same bytes
    nli = dict(METRICS, task="klue-nli", title="KLUE-NLI")
    two = update_card(one + "\n## Citation\nkeep me\n", nli, path=p)
    assert two.count("### KLUE-STS") == 1 and two.count("### KLUE-NLI") == 1 and two.endswith("## Citation\nkeep me\n")
    better = dict(METRICS, summary={"dev": {"pearson": {"mean": 0.9, "std": 0.0, "values": [0.9, 0.9]},
                                            "f1": {"mean": 1.0, "std": 0.0, "values": [1.0, 1.0]}}})
    three = update_card(two, better, path=p)
    assert two.count("50.00 ± 10.00") == 2 and three.count("50.00 ± 10.00") == 1  # only the NLI table keeps it
    assert "90.00 ± 0.00" in three and three.count("### KLUE-STS") == 1
    assert re.sub(r"<!-- koroberta-eval:klue-sts -->.*?<!-- /koroberta-eval:klue-sts -->", "", three, flags=re.S) == \
        re.sub(r"<!-- koroberta-eval:klue-sts -->.*?<!-- /koroberta-eval:klue-sts -->", "", two, flags=re.S)
    with pytest.raises(InputError, match="markers are unbalanced"):
        update_card(card + BEGIN + "\n", METRICS, path=p)


def test_config_checks():
    with pytest.raises(ConfigError, match="seeds must be between 1 and 100"):
        EvalConfig(seeds=0)
    with pytest.raises(ConfigError, match="precision fp16 needs CUDA"):
        EvalConfig(device="cpu", precision="fp16")
    with pytest.raises(ConfigError, match="is not one of"):
        EvalConfig(task="klue-re")
    assert EvalConfig(seed=7, seeds=3).seed_list == [7, 8, 9]


def test_precision_choice(monkeypatch):
    """auto: fp32 on CPU; on CUDA bf16 where the GPU has it, else fp16 (the choice itself, without a GPU)."""
    import torch

    from koroberta.errors import DependencyError
    from koroberta.eval.loop import resolve_precision

    assert resolve_precision("auto", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    for supported, want in ((True, "bf16"), (False, "fp16")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: supported)
        assert resolve_precision("auto", "cuda") == want
    with pytest.raises(DependencyError, match="does not support bf16"):
        resolve_precision("bf16", "cuda")
    with pytest.raises(DependencyError, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", "cpu")
