"""Fixtures shared by the train-stage tests."""

import pytest

from koroberta.train.launch import train
from koroberta.train.config import TrainConfig

from train_tiny import TINY


@pytest.fixture(scope="session")
def trained(tiny_databin, tmp_path_factory):
    """One real 30-update run shared by the tests that only read its results (each launch costs ~10 s here)."""
    import io
    from contextlib import redirect_stdout

    cfg = TrainConfig(**TINY)
    save = tmp_path_factory.mktemp("trained") / "ckpt"
    buf = io.StringIO()
    with redirect_stdout(buf):
        ckpt = train(cfg, tiny_databin, save)
    return cfg, save, ckpt, buf.getvalue()


