"""Cluster tests: the job scripts through a real SLURM (``make test-cluster`` brings one up, runs these, tears it down).

``make test`` does not collect this directory. Run directly without a cluster (no ``SLURM_CONF``), the tests skip
with the command to use; under ``make test-cluster`` (KOROBERTA_CLUSTER_TESTS=1) or in CI (CI=true) a missing or
unreachable SLURM is a failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from slurm_jobs import KOROBERTA, REPO, run

FIXTURES = REPO / "tests" / "fixtures"

#: the pipeline the cluster tests share: tiny fixture dump, the e2e test's sizes. corpus fractions differ from the
#: defaults so that a job that ignored CONFIG would build a different corpus; train.update_freq 2 on one process =
#: 16 sequences per update, which the two-node job keeps with --update-freq 1 (8 x 1 x 2 ranks).
PIPELINE = {
    "name": "cluster-tiny",
    "source": str(FIXTURES / "kowiki-tiny.xml.bz2"),
    "workers": 2,
    "nsmc_train": str(FIXTURES / "nsmc-tiny.tsv"),
    "corpus": {"valid_fraction": 0.1, "test_fraction": 0.1},
    "spm": {"vocab_size": 2000, "character_coverage": 0.995, "hard_vocab_limit": False, "threads": 1},
    "train": {"encoder_layers": 2, "encoder_embed_dim": 64, "encoder_ffn_embed_dim": 128,
              "encoder_attention_heads": 2, "tokens_per_sample": 64, "max_positions": 64,
              "sample_break_mode": "none", "batch_size": 8, "update_freq": 2, "lr": 0.001, "warmup_updates": 10,
              "max_update": 240, "log_interval": 5, "save_interval_updates": 20, "validate_interval_updates": 120,
              "keep_interval_updates": 1, "device": "cpu", "cpu_threads": 1, "num_workers": 0,
              "tensorboard": False, "min_free_disk_gb": 0.0},
    "convert": {"parity_lines": 200, "parity_sentences": 4},
    "finetune": {"max_train_rows": 200, "max_eval_rows": 100, "max_length": 32, "batch_size": 16, "lr": 0.0001,
                 "device": "cpu", "threads": 1},
}


def _cluster_problem() -> str | None:
    if not shutil.which("sbatch") or not shutil.which("scontrol"):
        return "SLURM client commands (sbatch, scontrol) not found"
    conf = os.environ.get("SLURM_CONF")
    if not conf or not Path(conf).is_file():
        return "SLURM_CONF does not name the slurm.conf of a running cluster"
    r = run(["scontrol", "ping"], timeout=30)
    if r.returncode != 0 or "UP" not in r.stdout:
        return f"slurmctld of {conf} does not answer ({(r.stdout + r.stderr).strip()[:200]})"
    r = run(["sinfo", "-h", "-N", "-o", "%N %t"], timeout=30)
    idle = [l.split()[0] for l in r.stdout.splitlines() if l.split()[1:] == ["idle"]]
    if len(idle) < 4:
        return f"need 4 idle nodes, sinfo shows {r.stdout.split()!r}"
    return None


@pytest.fixture(scope="session", autouse=True)
def slurm_cluster() -> str:
    problem = _cluster_problem()
    if problem:
        msg = f"{problem}; fix: run `make test-cluster` (scripts/dev/local_slurm.sh brings up a local cluster)"
        if os.environ.get("CI", "").lower() == "true" or os.environ.get("KOROBERTA_CLUSTER_TESTS") == "1":
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    return os.environ["SLURM_CONF"]


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory) -> tuple[Path, Path]:
    """(config path, workdir): the one-machine reference corpus (`koroberta corpus build`, the CLI a user runs) and
    `koroberta run --until preprocess`, which finds that corpus complete and adds spm + data-bin."""
    base = tmp_path_factory.mktemp("pipeline")
    wd = base / "run"
    cfg = base / "run.yaml"
    cfg.write_text(yaml.safe_dump({**PIPELINE, "workdir": str(wd)}, allow_unicode=True), encoding="utf-8")
    r = run([KOROBERTA, "corpus", "build", "--config", str(cfg), "--workers", "2", PIPELINE["source"],
             str(wd / "corpus")], timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    r = run([KOROBERTA, "run", str(cfg), "--until", "preprocess"], timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    # the corpus `koroberta corpus build` wrote is the one the pipeline uses (the array's byte reference)
    assert f"corpus.split: {wd / 'corpus' / 'split'} is complete for this config and these inputs; skipping" \
        in r.stderr, r.stderr[-2000:]
    return cfg, wd
