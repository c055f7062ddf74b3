"""Helpers for the cluster tests: submit with the real ``sbatch``, read job state from the real ``scontrol``.

Nothing here imitates the scheduler; every state comes from ``scontrol show job`` of the cluster ``SLURM_CONF``
names (``scripts/dev/local_slurm.sh`` brings one up; ``make test-cluster``).
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[2]
KOROBERTA = str(Path(sys.executable).parent / "koroberta")
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL",
            "DEADLINE", "SPECIAL_EXIT"}
_FIELD = re.compile(r"([\w/:]+)=(\S*)")  # Key=Value; keys such as CPUs/Task


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 120)
    return subprocess.run(cmd, **kw)


def job_env(**extra: str) -> dict[str, str]:
    """The submitting shell's environment (sbatch exports it to the job: --export=ALL is the default)."""
    env = {k: v for k, v in os.environ.items() if k not in ("CONFIG", "STEP", "N", "OUT", "SOURCE", "GPUS_PER_NODE",
                                                             "MASTER_PORT", "RDZV_ADDR")}
    return {**env, **extra}


def sbatch(args: list[str], env: dict[str, str], cwd: Path = REPO) -> str:
    r = run(["sbatch", "--parsable", *args], cwd=cwd, env=env)
    assert r.returncode == 0, f"sbatch {shlex.join(args)} failed: {r.stderr.strip()}"
    return r.stdout.strip().split(";")[0]


def bash(script: str, env: dict[str, str], cwd: Path = REPO) -> str:
    r = run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env)
    assert r.returncode == 0, f"bash failed ({r.returncode}): {script}\n{r.stderr}"
    return r.stdout


def jobs(jobid: str) -> list[dict[str, str]]:
    """``scontrol show job -o JOBID``: one record per job (an array gives one per task)."""
    r = run(["scontrol", "show", "job", "-o", jobid])
    assert r.returncode == 0, f"scontrol show job {jobid}: {r.stderr.strip()}"
    return [dict(_FIELD.findall(line)) for line in r.stdout.splitlines() if line.strip()]


def job(jobid: str) -> dict[str, str]:
    recs = jobs(jobid)
    assert len(recs) == 1, f"job {jobid}: {len(recs)} records"
    return recs[0]


def wait_until(pred: Callable[[], object], timeout: float, what: str, poll: float = 0.5):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


def wait_done(jobid: str, timeout: float, log: Path | None = None) -> list[dict[str, str]]:
    """Wait until every record of ``jobid`` is in a terminal state; return the records."""
    try:
        return wait_until(lambda: (lambda r: r if all(x["JobState"] in TERMINAL for x in r) else None)(jobs(jobid)),
                          timeout, f"job {jobid} to end", poll=1.0)
    except AssertionError as e:
        states = [(x.get("JobId"), x.get("ArrayTaskId"), x.get("JobState"), x.get("Reason")) for x in jobs(jobid)]
        tail = log.read_text(errors="replace")[-3000:] if log and log.is_file() else ""
        raise AssertionError(f"{e}; states {states}\n{tail}") from None


def hostnames(nodelist: str) -> list[str]:
    r = run(["scontrol", "show", "hostnames", nodelist])
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def readme_block(marker: str) -> str:
    """The fenced code block of README.md that contains ``marker`` (the commands users are told to run)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.S | re.M)
    hits = [b for b in blocks if marker in b]
    assert len(hits) == 1, f"README.md: {len(hits)} code blocks contain {marker!r} (want exactly 1)"
    return hits[0]


def checkpoint_updates(path: Path) -> int:
    import torch

    state = torch.load(path, map_location="cpu", weights_only=False)
    return int(state["optimizer_history"][-1]["num_updates"])
