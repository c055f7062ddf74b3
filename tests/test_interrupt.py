"""Ctrl-C stops a stage at once with one line, "interrupted", exit code 130, and leaves nothing complete.

A terminal's Ctrl-C sends SIGINT to the whole foreground process group, the stage's worker and trainer processes
included; the tests do the same (``start_new_session`` + ``os.killpg``) with the real CLI.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false"}


def start(*args: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "koroberta", *map(str, args)], cwd=REPO, env=ENV, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


#: Linux lists a process's children here (CONFIG_PROC_CHILDREN); without it the tests wait fixed times instead
CAN_LIST_CHILDREN = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists()


def children(pid: int) -> list[int]:
    p = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in p.read_text().split()] if p.exists() else []


def interrupt(proc: subprocess.Popen, limit_s: float = 3.0) -> str:
    """Ctrl-C the process group; the command must be gone within ``limit_s``. Returns the rest of its stderr."""
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=60)  # stderr is a few log lines: the pipe cannot fill up
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError("still running 60 s after Ctrl-C") from None
    took = time.monotonic() - t0
    err = proc.stderr.read()  # through the same reader the test may have read the first lines with
    assert took < limit_s, f"exited {took:.1f} s after Ctrl-C\n{err[-2000:]}"
    return err


def assert_interrupted(proc: subprocess.Popen, err: str) -> None:
    """Exit 130, and besides koroberta's own progress log lines, exactly one line: "interrupted" (no traceback, no
    "Process ForkPoolWorker-N:" from a worker)."""
    assert proc.returncode == 130, (proc.returncode, err[-3000:])
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    assert not any(l.startswith("Process ") for l in err.splitlines()), err[-3000:]  # Process ForkPoolWorker-3:
    other = [l for l in err.splitlines() if l.strip() and " | INFO | koroberta" not in l]
    assert other == ["interrupted"], err[-3000:]


def no_stage_output(*dirs: Path) -> None:
    """No completion marker and no temporary directory of a killed run left behind."""
    for d in dirs:
        assert not d.exists() or not list(d.rglob("_COMPLETE")), d
        assert not list(d.parent.glob(f".{d.name}.tmp-*")), list(d.parent.iterdir())


def test_ctrl_c_corpus_with_workers(tmp_path):
    """Ctrl-C while two pool workers split sentences with kss: the workers ignore SIGINT, the parent terminates
    the pool. extract/ and clean/ were complete before (resumable sub-steps); sentences/ and split/ are not."""
    para = " ".join(f"{i}번째 문장은 시험용으로 쓰인다." for i in range(30))
    src = tmp_path / "text.txt"
    src.write_text("".join(f"{k}: {para}\n\n" for k in range(400)), encoding="utf-8")  # ~0.5 MB, ~25 s of kss
    out = tmp_path / "corpus"
    proc = start("corpus", "build", src, out, "--workers", "2")
    for line in proc.stderr:  # the sentences step (and its worker pool) starts right after clean's log line
        if "| koroberta.corpus | clean:" in line:
            break
    else:
        pytest.fail(f"corpus build ended before the sentences step: rc {proc.wait()}")
    time.sleep(1.0)  # the pool is up and its workers are importing kss (seconds) or splitting with it
    assert len(children(proc.pid)) == 2 or not CAN_LIST_CHILDREN, children(proc.pid)  # the pool's workers
    err = interrupt(proc)
    assert_interrupted(proc, err)
    no_stage_output(out / "sentences", out / "split")
    assert (out / "clean" / "_COMPLETE").is_file()  # the finished sub-steps stay: a rerun resumes from them


def test_corpus_pool_workers_ignore_sigint():
    """The mechanism behind the test above, deterministically: whether a worker's own traceback reaches the
    terminal before the parent terminates the pool is a race, whether the worker handles SIGINT is not."""
    from koroberta.corpus.steps import _pool

    with _pool(2) as pool:
        dispositions = pool.map(signal.getsignal, [signal.SIGINT] * 4, chunksize=1)
    assert dispositions == [signal.SIG_IGN] * 4
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the parent still turns it into ^C


def test_ctrl_c_spm_train(tmp_path):
    """Ctrl-C during the C++ SentencePiece trainer (which never returns to Python until it is done: ~13 s on this
    text, hours on the base config) stops it within seconds; the trainer process is gone and nothing is left."""
    rng = np.random.default_rng(0)
    syllables = np.array([chr(0xAC00 + i) for i in rng.choice(11172, 800, replace=False)] + [" "])
    idx = rng.zipf(1.2, size=(30000, 30)) % 800
    idx[rng.random(idx.shape) < 0.3] = 800  # a space: ~6 words a line, many distinct ones
    text = tmp_path / "train.txt"
    text.write_text("".join("가" + "".join(row).strip() + "\n" for row in syllables[idx].tolist()), encoding="utf-8")
    out = tmp_path / "spm"
    proc = start("spm", "train", "--train-text", text, "--out", out, "--vocab-size", "2000", "--threads", "1")
    deadline = time.monotonic() + 30
    while not children(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    trainer = children(proc.pid)
    if CAN_LIST_CHILDREN:
        assert trainer, f"no trainer process was started (rc {proc.poll()}): {proc.stderr.read()[-2000:]}"
    else:
        time.sleep(3.0)  # no /proc here: time for the CLI to start and the trainer to read the text
    assert proc.poll() is None, proc.stderr.read()[-2000:]
    time.sleep(2.0)  # the trainer has read the 30k lines (< 1 s) and is inside spm's C++ training
    err = interrupt(proc)
    assert_interrupted(proc, err)
    no_stage_output(out)
    for pid in trainer:
        assert not Path(f"/proc/{pid}").exists(), f"trainer process {pid} is still there"
