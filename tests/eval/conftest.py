"""A tiny HF export for the eval tests, built once per session from the shared tiny fairseq checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

EVAL_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "eval"


@pytest.fixture(scope="session")
def eval_hf(tmp_path_factory, tiny_checkpoint, tiny_vocab) -> Path:
    from koroberta.convert.config import ConvertConfig
    from koroberta.convert.export import convert

    out = tmp_path_factory.mktemp("eval_hf") / "hf"
    convert(ConvertConfig(parity_lines=10, parity_sentences=2), tiny_checkpoint, tiny_vocab, out)
    return out
