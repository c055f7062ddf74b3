"""Shared test fixtures.

The ``tiny_*`` fixtures build a reference vocab -> data-bin -> fairseq checkpoint chain with the *upstream tools
directly* (sentencepiece, ``fairseq-preprocess``, ``fairseq-train``), not with koroberta's stage code, so stage tests
can compare their output against an independent reference. Built once per test session (~30 s on 2 cores).
"""

from __future__ import annotations

import lzma
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# fairseq loads its own checkpoints with torch.load; torch >= 2.6 defaults to weights_only=True, which refuses them.
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

TINY_ARCH = [
    "--arch", "roberta_base", "--encoder-layers", "2", "--encoder-embed-dim", "64",
    "--encoder-ffn-embed-dim", "128", "--encoder-attention-heads", "2", "--max-positions", "64",
]


# -- a missing dependency skips locally and FAILS in CI --------------------------------------------------------------
#: skip reasons that mean "a dependency is missing" (pytest.importorskip says "could not import 'x': ...")
MISSING_DEPENDENCY = ("could not import", "not installed", "no module named")


def is_missing_dependency(reason: str) -> bool:
    return any(m in reason.lower() for m in MISSING_DEPENDENCY)


def skip_missing_dependency(what: str, fix: str = "run scripts/setup_env.sh") -> None:
    """Skip because ``what`` is not installed: a skip on a developer machine, a failure when CI=true (hooks below)."""
    pytest.skip(f"{what} not installed ({fix})")


def _fail_in_ci(rep) -> None:
    """Turn a skip whose reason names a missing dependency into a failure when the environment has CI=true."""
    if not rep.skipped or hasattr(rep, "wasxfail") or os.environ.get("CI", "").lower() != "true":
        return
    reason = str(rep.longrepr[2]) if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
    if is_missing_dependency(reason):
        rep.outcome = "failed"
        rep.longrepr = f"CI=true: a missing dependency fails instead of skipping: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_in_ci(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield  # a module-level pytest.importorskip skips at collection
    _fail_in_ci(outcome.get_result())


def fairseq_bin(name: str) -> str:
    exe = BIN / name
    if not exe.exists():
        skip_missing_dependency(name)
    return str(exe)


def read_docs() -> list[list[str]]:
    """The kowiki-docs fixture as documents (lists of non-empty lines)."""
    text = (FIXTURES / "kowiki-docs.txt").read_text(encoding="utf-8")
    return [[l for l in d.split("\n") if l.strip()] for d in text.split("\n\n") if d.strip()]


@pytest.fixture(scope="session")
def kowiki_docs() -> list[list[str]]:
    return read_docs()


@pytest.fixture(scope="session")
def tiny_vocab(tmp_path_factory) -> Path:
    """spm.model (unigram, 2000 pieces, XLM-R specials) + dict.txt in the koroberta layout."""
    import sentencepiece as spm

    from koroberta.layout import SPM_SPECIALS, load_vocab

    out = tmp_path_factory.mktemp("tiny_vocab")
    lines = [l for d in read_docs()[:70] for l in d]
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_prefix=str(out / "spm"), vocab_size=2000, model_type="unigram",
        character_coverage=0.995, num_threads=1, minloglevel=2, **SPM_SPECIALS)
    (out / "dict.txt").write_text(load_vocab(out / "spm.model", pad_to=8).dict_text(), encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def tiny_split(tmp_path_factory) -> Path:
    """train/valid/test text in the corpus stage's format: one line per sentence, blank line between documents."""
    out = tmp_path_factory.mktemp("tiny_split")
    docs = read_docs()
    for name, part in (("train", docs[:70]), ("valid", docs[70:76]), ("test", docs[76:])):
        (out / f"{name}.txt").write_text("\n\n".join("\n".join(d) for d in part) + "\n", encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def tiny_databin(tmp_path_factory, tiny_vocab, tiny_split) -> Path:
    """fairseq-preprocess (reference path) over spm pieces of ``tiny_split``; blank lines kept as documents."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tiny_vocab / "spm.model"))
    enc = tmp_path_factory.mktemp("tiny_encoded")
    for name in ("train", "valid", "test"):
        lines = (tiny_split / f"{name}.txt").read_text(encoding="utf-8").split("\n")[:-1]
        pieces = sp.encode(lines, out_type=str)
        (enc / f"{name}.spm").write_text("".join(" ".join(p) + "\n" for p in pieces), encoding="utf-8")
    out = tmp_path_factory.mktemp("tiny_databin")
    subprocess.run([fairseq_bin("fairseq-preprocess"), "--only-source", "--srcdict", str(tiny_vocab / "dict.txt"),
                    "--trainpref", str(enc / "train.spm"), "--validpref", str(enc / "valid.spm"),
                    "--testpref", str(enc / "test.spm"), "--destdir", str(out), "--dataset-impl", "mmap",
                    "--workers", "1"], check=True, capture_output=True)
    shutil.copy(tiny_vocab / "spm.model", out / "spm.model")
    return out


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_databin) -> Path:
    """A real fairseq roberta checkpoint (2 layers, dim 64) after 30 CPU updates."""
    save = tmp_path_factory.mktemp("tiny_ckpt")
    cmd = [fairseq_bin("fairseq-train"), str(tiny_databin), "--task", "masked_lm", "--criterion", "masked_lm",
           *TINY_ARCH, "--tokens-per-sample", "64", "--sample-break-mode", "complete", "--batch-size", "8",
           "--optimizer", "adam", "--adam-betas", "(0.9,0.98)", "--adam-eps", "1e-6", "--lr", "1e-3",
           "--lr-scheduler", "polynomial_decay", "--warmup-updates", "5", "--total-num-update", "30",
           "--max-update", "30", "--save-dir", str(save), "--cpu", "--num-workers", "0", "--seed", "1",
           "--log-format", "simple", "--log-interval", "10", "--no-epoch-checkpoints", "--skip-invalid-size-inputs-valid-test"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"fairseq-train failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return save / "checkpoint_last.pt"


# -- real kowiki lines for the spm / preprocess tests ----------------------------------------------------------------
def kowiki_lines() -> list[str]:
    """3,000 real kowiki paragraph lines (blank line between documents): tests/fixtures/spm-kowiki-lines.txt.xz."""
    with lzma.open(FIXTURES / "spm-kowiki-lines.txt.xz", "rt", encoding="utf-8") as f:
        return f.read().split("\n")[:-1]


@pytest.fixture(scope="session")
def kowiki_line_list() -> list[str]:
    return kowiki_lines()


@pytest.fixture(scope="session")
def kowiki_train_text(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("spm_text") / "train.txt"
    p.write_text("\n".join(kowiki_lines()[:2400]) + "\n", encoding="utf-8")
    return p


@pytest.fixture(scope="session")
def kowiki_vocab(tmp_path_factory, kowiki_train_text) -> Path:
    """A koroberta vocab (spm unigram 3,000, 1 thread) trained on the first 2,400 lines."""
    from koroberta.spm.config import SpmConfig
    from koroberta.spm.train import train_vocab

    return train_vocab(SpmConfig(vocab_size=3000, threads=1), kowiki_train_text,
                       tmp_path_factory.mktemp("spm_vocab") / "spm")
