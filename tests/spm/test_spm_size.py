"""The real size of the spm stage: threads 0 resolved before it enters the identity, a bounded default sample,
the cost said before training and a refusal when it cannot fit (issue "Real size", items 1 and 2)."""

from __future__ import annotations

import logging
import os

import pytest

from koroberta.artifacts import is_complete, read_manifest, sha256_file
from koroberta.errors import ConfigError
from koroberta.spm.config import SpmConfig
from koroberta.spm.train import estimate_peak_bytes, max_sentences, train_vocab

GiB = 2 ** 30


@pytest.fixture
def cpus(monkeypatch):
    """``cpus(n)``: this process may use n CPUs from now on (the affinity mask available_cpus reads)."""
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    return lambda n: monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(n)))


@pytest.fixture(scope="module")
def small_text(tmp_path_factory, kowiki_train_text):
    """600 lines of kowiki (blank separators included): 800 pieces at 98 % character coverage train in a second."""
    p = tmp_path_factory.mktemp("spm_size") / "train.txt"
    p.write_text("".join(kowiki_train_text.read_text(encoding="utf-8").splitlines(keepends=True)[:600]),
                 encoding="utf-8")
    return p


def test_threads_zero_is_the_cpu_count_in_the_identity(cpus):
    cpus(2)
    on2, pinned2 = SpmConfig(threads=0).identity(), SpmConfig(threads=4).identity()
    cpus(16)
    on16, pinned16 = SpmConfig(threads=0).identity(), SpmConfig(threads=4).identity()
    assert (on2["threads"], on16["threads"]) == (2, 16) and on2 != on16
    assert on16 == SpmConfig(threads=16).identity()  # 0 on 16 CPUs and an explicit 16 are one output
    assert pinned2 == pinned16 and pinned2["threads"] == 4
    assert SpmConfig(threads=0).to_dict()["threads"] == 0  # the config as written stays 0 for people


def test_vocab_made_with_threads_zero_on_2_cpus_is_not_complete_on_16(cpus, small_text, tmp_path):
    cpus(2)
    cfg = SpmConfig(vocab_size=800, threads=0, character_coverage=0.98, hard_vocab_limit=False)
    out = train_vocab(cfg, small_text, tmp_path / "spm")
    m = read_manifest(out)
    assert m["identity"]["threads"] == 2 and m["config"]["threads"] == 0 and m["stats"]["trainer"]["num_threads"] == 2
    assert is_complete(out, "spm", cfg, {"train": small_text})
    cpus(16)
    assert not is_complete(out, "spm", cfg, {"train": small_text})  # spm would build it differently here
    assert is_complete(out, "spm", cfg.replace(threads=2), {"train": small_text})


def test_default_sample_is_bounded():
    n = SpmConfig().input_sentence_size
    assert 0 < n <= 2_000_000
    assert estimate_peak_bytes(n) < 4.5 * GiB  # an 8 GB machine holds it, with room to spare
    # the fit reproduces the two measurements it was drawn through (BENCHMARKS.md, peak RSS in MiB)
    assert round(estimate_peak_bytes(1_000_000) / 2 ** 20) == 2623
    assert round(estimate_peak_bytes(5_000_000) / 2 ** 20) == 8702
    assert 700 < estimate_peak_bytes(300_000) / 2 ** 20 < 900  # measured: 795 MiB (not the fit's 1.1 GiB floor)
    for memory in (2 ** 20, GiB, 3 * GiB, 16 * GiB):  # the inverse the refusal's fix names a size with
        n = max_sentences(memory)
        assert estimate_peak_bytes(n) <= memory < estimate_peak_bytes(n + 10)


def test_cost_is_the_first_line_and_a_sample_of_everything_is_the_same_vocab(small_text, tmp_path, caplog, cpus):
    cpus(1)
    caplog.set_level(logging.INFO, logger="koroberta.spm")
    base = SpmConfig(vocab_size=800, threads=1, character_coverage=0.98, hard_vocab_limit=False)
    sentences = sum(1 for line in small_text.read_text(encoding="utf-8").splitlines() if line.strip())
    whole = train_vocab(base.replace(input_sentence_size=0), small_text, tmp_path / "all")
    # the stage's needs line (koroberta.resources) first, then the plan
    needs, first = [r.getMessage() for r in caplog.records if r.name == "koroberta.spm"][:2]
    assert needs.startswith("spm: needs about ") and " memory, " in needs, needs
    need = estimate_peak_bytes(sentences) / 2 ** 20
    assert first.startswith(f"spm: training on all {sentences:,} sentences (input_sentence_size 0) with 1 thread "
                            f"(~{need:.1f} MiB peak by the fit in BENCHMARKS.md; memory limit ")
    caplog.clear()
    default = train_vocab(base, small_text, tmp_path / "default")  # 2M > the file: every sentence
    assert f"all {sentences:,} sentences (input_sentence_size 2,000,000)" in caplog.records[1].getMessage()
    for name in ("spm.model", "dict.txt"):  # the same bytes as 0: later stages of an older run stay complete
        assert sha256_file(whole / name) == sha256_file(default / name), name
    caplog.clear()
    train_vocab(base.replace(input_sentence_size=100), small_text, tmp_path / "sample")
    assert f"a sample of 100 of {sentences:,} sentences" in caplog.records[1].getMessage()


class _Started(Exception):
    """Raised by the stand-in for the trainer process: the stage got as far as starting it."""


def test_refused_before_training_when_the_estimate_exceeds_the_memory_limit(small_text, tmp_path, monkeypatch):
    from koroberta.corpus import steps
    from koroberta.spm import train

    def trainer(*args):
        raise _Started

    monkeypatch.setattr(train, "_train_in_child", trainer)
    monkeypatch.setattr(steps, "memory_limit", lambda: 2 ** 20)  # a tiny job: 1 MiB
    cfg = SpmConfig(vocab_size=400, threads=1)
    with pytest.raises(ConfigError, match=r"^spm.input_sentence_size=2000000: training on [\d,]+ sentences of "
                                          r"\S+train.txt needs ~1.5 MiB by the fit in BENCHMARKS.md, more than 90% "
                                          r"of the 1.0 MiB .* fix: set spm.input_sentence_size: 340 \(~0.9 MiB\) or "
                                          r"train on a machine with more memory$"):
        train_vocab(cfg, small_text, tmp_path / "out")
    # a corpus of 10M sentences in a 3 GiB job: the default 2M sample does not fit, the fix names one that does
    monkeypatch.setattr(train, "count_sentences", lambda path: 10_000_000)
    monkeypatch.setattr(steps, "memory_limit", lambda: 3 * GiB)
    with pytest.raises(ConfigError, match=r"training on 2,000,000 sentences of .* needs ~4.0 GiB .* of the 3.0 GiB "
                                          r".* fix: set spm.input_sentence_size: 1000000 \(~2.6 GiB\) or train on "
                                          r"a machine with more memory$"):
        train_vocab(cfg, small_text, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.tmp-*"))
    monkeypatch.setattr(steps, "memory_limit", lambda: 8 * GiB)  # where it fits, the trainer starts
    with pytest.raises(_Started):
        train_vocab(cfg, small_text, tmp_path / "out")
