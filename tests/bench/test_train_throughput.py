"""Smoke test of the GPU throughput benchmark on CPU: it runs the real training path and reports a table.

On a GPU the same script (without --tiny) gives roberta_base tokens/s and MFU; here we only prove the machinery:
synthetic data-bin, per-config fairseq runs, padding variant, CUDA-only variants reported as skipped.
"""

from __future__ import annotations

import json
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


def _bench_module():
    sys.path.insert(0, str(REPO / "bench"))
    import train_throughput

    return train_throughput


def test_config_names_combine_left_to_right_and_keep_sequences_per_update(tmp_path):
    tt = _bench_module()
    assert tt.variant("bs64+break_none+workers2+pad64") == {"_batch_same_seqs": 64, "sample_break_mode": "none",
                                                            "num_workers": 2, "_pad_to": 64}
    assert tt.variant("workers4+workers0")["num_workers"] == 0
    assert tt.variant("rsl8+rsl8")["extra_args"] == ["--required-seq-len-multiple", "8"] * 2
    with pytest.raises(Exception, match="unknown configuration 'bogus'"):
        tt.variant("stock+bogus")
    # the recipe per GPU (16 x update_freq 16): a bigger batch lowers update_freq, 256 sequences per update stay
    base = tt.base_settings(30, update_freq=16, cuda=True)
    for name, bs, uf in [("stock", 16, 16), ("bs64", 64, 4), ("bs256+break_none", 256, 1), ("bs32_uf1", 32, 1)]:
        cfg, data, skip = tt.build_config(name, base, tmp_path, tmp_path, cuda=True)
        assert (cfg.batch_size, cfg.update_freq, skip, data) == (bs, uf, None, tmp_path)
    cfg, _, _ = tt.build_config("bs64", tt.base_settings(30), tmp_path, tmp_path, cuda=False)
    assert (cfg.batch_size, cfg.update_freq) == (64, 1)  # never below one step per update
    assert tt.build_config("amp+pad64", tt.base_settings(30), tmp_path, tmp_path, cuda=False)[2] == "needs CUDA"


def test_past_deadline_records_every_config_as_skipped_without_running(tmp_path):
    data = tmp_path / "data-bin"
    data.mkdir()
    (data / "dict.txt").write_text("▁a 5\n▁b 3\n", encoding="utf-8")
    jsonl, out = tmp_path / "rows.jsonl", tmp_path / "bench.md"
    r = subprocess.run([sys.executable, str(REPO / "bench" / "train_throughput.py"), "--data-bin", str(data),
                        "--configs", "stock", "bs64+break_none", "--deadline", "1", "--jsonl", str(jsonl),
                        "--out", str(out)], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    rows = [json.loads(l) for l in jsonl.read_text(encoding="utf-8").splitlines()]
    assert [(x["name"], x["skipped"]) for x in rows] == [("stock", "deadline: 0 s left"),
                                                          ("bs64+break_none", "deadline: 0 s left")]
    assert "| bs64+break_none |" in out.read_text(encoding="utf-8")


def test_profile_reports_time_by_class_on_cpu(tmp_path, tiny_databin):
    out, jsonl = tmp_path / "profile.md", tmp_path / "rows.jsonl"
    r = subprocess.run([sys.executable, str(REPO / "bench" / "profile_train.py"), "--data-bin", str(tiny_databin),
                        "--config", "stock", "--tiny", "--skip", "1", "--steps", "2", "--cpu-threads", "1",
                        "--out", str(out), "--jsonl", str(jsonl)],
                       capture_output=True, text=True, cwd=REPO, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    row = json.loads(jsonl.read_text(encoding="utf-8"))
    assert row["stage"] == "profile" and row["ms_per_update"] > 0
    assert row["share"].get("matmul", 0) > 0 and abs(sum(row["share"].values()) - 1) < 0.01
    assert "| matmul |" in out.read_text(encoding="utf-8")
