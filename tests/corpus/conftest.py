import bz2
import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TINY = FIXTURES / "kowiki-tiny.xml.bz2"


@pytest.fixture(scope="session")
def tiny_truth() -> list[dict]:
    with bz2.open(FIXTURES / "kowiki-tiny.truth.jsonl.bz2", "rt", encoding="utf-8") as f:
        return [json.loads(l) for l in f]


@pytest.fixture(scope="session")
def tiny_dump() -> Path:
    return TINY
