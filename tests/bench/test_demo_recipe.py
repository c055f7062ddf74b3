"""bench/demo_recipe.py: every variant is a valid `koroberta train` command, and its score is the learning check's
measure (the unigram side recomputed here from the data-bin with the same mask draws)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _load():
    spec = importlib.util.spec_from_file_location("bench_demo_recipe", REPO / "bench" / "demo_recipe.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_variant_is_a_valid_train_config():
    """Each variant's options, as `--section.key` overrides of configs/demo.yaml, make a valid train config (its
    __post_init__ checks) whose fairseq command carries them."""
    from koroberta.pipeline import PipelineConfig
    from koroberta.train.command import fairseq_args

    dr = _load()
    for name, (_, changes) in dr.VARIANTS.items():
        opts = dr.options(changes)
        sets, i = [], 0
        while i < len(opts):  # --key value | --switch
            key = "train." + opts[i][2:].replace("-", "_")
            if i + 1 < len(opts) and not opts[i + 1].startswith("--"):
                sets.append(f"{key}={opts[i + 1]}")
                i += 2
            else:
                sets.append(f"{key}=true")
                i += 1
        cfg = PipelineConfig.load(REPO / "configs/demo.yaml", overrides=sets).train
        args = fairseq_args(cfg, "DATA", "SAVE", cuda=False)
        flags = dict(zip(args, args[1:]))
        want = {**dr.BASE, **changes}
        for flag in ("--arch", "--mask-prob", "--tokens-per-sample", "--batch-size", "--max-update",
                     "--encoder-attention-heads", "--sample-break-mode", "--dropout"):
            assert float(flags[flag]) == float(want[flag]) if flag in ("--mask-prob", "--dropout") \
                else flags[flag] == want[flag], (name, flag, flags.get(flag))
        assert cfg.cpu_threads == 1 and cfg.layernorm_embedding is True, name


def test_score_is_the_learning_checks_measure(tiny_checkpoint, tiny_databin):
    from fairseq.data import Dictionary, data_utils

    from koroberta.eval.mlm import unigram_counts

    dr = _load()
    got = dr.score(tiny_checkpoint, tiny_databin, lines=50, mask_prob=0.3, seed=7)
    # the unigram side by hand: same items, same draws (the model's max positions: the tiny model's 64... 512)
    d = Dictionary.load(str(tiny_databin / "dict.txt"))
    d.add_symbol("<mask>")
    valid = data_utils.load_indexed_dataset(str(tiny_databin / "valid"), d)
    counts = unigram_counts(tiny_databin, len(d) - 1).astype(float)[: len(d)]
    counts[:4] = 0
    counts[d.index("<mask>")] = 0
    top = int(counts.argmax())
    p = (counts + 1) / (counts.sum() + len(counts))
    import torch

    ckpt = torch.load(tiny_checkpoint, map_location="cpu", weights_only=False)
    positions = ckpt["cfg"]["model"].max_positions
    rng = np.random.default_rng(7)
    gold = []
    for i in range(min(50, len(valid))):
        toks = [d.bos(), *valid[i][: positions - 2].tolist()]
        if toks[-1] != d.eos():
            toks.append(d.eos())
        gold += [toks[j] for j in np.flatnonzero(rng.random(len(toks)) < 0.3) if 0 < j < len(toks) - 1]
    gold = np.array(gold)
    assert got["masked"] == len(gold) > 50
    assert got["unigram_accuracy"] == round(float((gold == top).mean()), 4)
    assert got["unigram_loss_bits"] == round(float(-np.log(p[gold]).mean() / math.log(2)), 4)
    # the model's side: a 30-update model is a real prediction, not the unigram answer everywhere nor noise
    assert 0 < got["loss_bits"] < math.log2(len(d))
    assert got["accuracy_ratio"] == round(got["accuracy"] / got["unigram_accuracy"], 3)
