"""The data-bin manifest records each split's largest id (what train preflight checks against the dictionary):
the fused writer keeps a running max while encoding. (The fairseq path, which reads the .bin it got back once, is
compared with it in tests/preprocess/test_preprocess_stage.py::test_fused_is_byte_identical_to_fairseq_preprocess.)"""

from __future__ import annotations

import pytest

from koroberta.artifacts import read_manifest
from koroberta.databin import read_mmap
from koroberta.preprocess.build import preprocess
from koroberta.preprocess.config import PreprocessConfig


@pytest.fixture(scope="module")
def fused(tmp_path_factory, tiny_split, tiny_vocab):
    return preprocess(PreprocessConfig(), tiny_split, tiny_vocab, tmp_path_factory.mktemp("pp") / "fused")


def test_fused_records_the_largest_id_per_split(fused):
    recorded = read_manifest(fused)["stats"]["max_id"]
    actual = {s: int(read_mmap(fused / s)[1].max()) for s in ("train", "valid", "test")}
    assert recorded == actual
    assert 4 < recorded["train"] < read_manifest(fused)["stats"]["vocab_size"] - 1  # an ordinary piece, not <mask>

