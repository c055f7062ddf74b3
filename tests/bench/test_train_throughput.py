"""Smoke test of the GPU throughput benchmark on CPU: it runs the real training path and reports a table.

On a GPU the same script (without --tiny) gives roberta_base tokens/s and MFU; here we only prove the machinery:
synthetic data-bin, per-config fairseq runs, padding variant, CUDA-only variants reported as skipped.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_tiny_cpu_run_reports_every_config(tmp_path):
    out = tmp_path / "bench.md"
    r = subprocess.run([sys.executable, str(REPO / "bench" / "train_throughput.py"), "--tiny", "--updates", "4",
                        "--log-interval", "1", "--vocab", "2000", "--tokens", "80000", "--cpu-threads", "1",
                        "--configs", "stock", "pad64", "amp", "--out", str(out)],
                       capture_output=True, text=True, cwd=REPO, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    text = out.read_text(encoding="utf-8")
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| (\w+) \|.*$", text, re.M)}
    assert "1.00x" in rows["stock"]
    tokens_per_s = float(rows["stock"].split("|")[6].replace(",", ""))
    assert tokens_per_s > 0
    pad_rows = int(rows["pad64"].split("|")[5])
    assert pad_rows % 64 == 0
    assert "needs CUDA" in rows["amp"]
    assert "CPU smoke figures" in text
