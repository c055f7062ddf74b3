"""Atomic stage outputs: a marker written last, tied to config and inputs; failures leave nothing behind."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from koroberta.artifacts import (MARKER, MANIFEST, StageOutput, fingerprint, is_complete, read_manifest,
                                 remove_stale_tmp)
from koroberta.errors import OutputError


def make(out, inp, cfg, text="hello"):
    with StageOutput(out, stage="demo", config=cfg, inputs={"src": inp}) as st:
        (st.tmp / "a.txt").write_text(text)
        st.stats["n"] = len(text)
    return st.manifest


def test_complete_output_and_marker(tmp_path):
    inp = tmp_path / "in.txt"
    inp.write_text("x")
    out = tmp_path / "out"
    m = make(out, inp, {"k": 1})
    assert (out / MARKER).is_file() and (out / "a.txt").read_text() == "hello"
    assert m["outputs"]["a.txt"]["bytes"] == 5 and m["stats"] == {"n": 5}
    assert is_complete(out, "demo", {"k": 1}, {"src": inp})
    assert not is_complete(out, "demo", {"k": 2}, {"src": inp}), "a marker for another config must not count"
    assert not is_complete(out, "other", {"k": 1}, {"src": inp})
    inp.write_text("y")
    assert not is_complete(out, "demo", {"k": 1}, {"src": inp}), "changed input must invalidate"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_manifest_is_deterministic(tmp_path):
    inp = tmp_path / "in.txt"
    inp.write_text("x")
    make(tmp_path / "o1", inp, {"k": 1})
    make(tmp_path / "o2", inp, {"k": 1})
    assert (tmp_path / "o1" / MANIFEST).read_bytes() == (tmp_path / "o2" / MANIFEST).read_bytes()
    assert fingerprint(tmp_path / "o1") == fingerprint(tmp_path / "o2")


def test_failure_keeps_previous_output(tmp_path):
    inp = tmp_path / "in.txt"
    inp.write_text("x")
    out = tmp_path / "out"
    make(out, inp, {"k": 1})
    with pytest.raises(RuntimeError):
        with StageOutput(out, stage="demo", config={"k": 2}, inputs={"src": inp}) as st:
            (st.tmp / "a.txt").write_text("partial")
            raise RuntimeError("boom")
    assert (out / "a.txt").read_text() == "hello" and is_complete(out, "demo", {"k": 1}, {"src": inp})
    assert not any(p.name.startswith(".out.tmp") for p in tmp_path.iterdir())


def test_edited_manifest_is_not_complete(tmp_path):
    inp = tmp_path / "in.txt"
    inp.write_text("x")
    out = tmp_path / "out"
    make(out, inp, {"k": 1})
    m = json.loads((out / MANIFEST).read_text())
    m["stats"]["n"] = 99
    (out / MANIFEST).write_text(json.dumps(m))
    assert read_manifest(out) is None


def test_foreign_directory_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="files koroberta did not write"):
        make(out, tmp_path, {})
    assert (out / "notes.txt").read_text() == "mine"
    with StageOutput(out, stage="demo", config={}, inputs={}, overwrite=True) as st:
        (st.tmp / "b").write_text("b")
    assert sorted(p.name for p in out.iterdir()) == sorted(["b", MARKER, MANIFEST, "timing.json"])


def test_killed_stage_never_looks_complete(tmp_path):
    """SIGKILL in the middle of a stage: no marker, stale tmp removed by the next run, which completes."""
    out = tmp_path / "out"
    script = textwrap.dedent(f"""
        import os, signal
        from koroberta.artifacts import StageOutput
        with StageOutput({str(out)!r}, stage="demo", config={{}}, inputs={{}}) as st:
            (st.tmp / "a.txt").write_text("half")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    r = subprocess.run([sys.executable, "-c", script])
    assert r.returncode == -9
    assert not out.exists() and len(list(tmp_path.glob(".out.tmp-*"))) == 1
    assert read_manifest(out) is None
    remove_stale_tmp(out)
    assert list(tmp_path.glob(".out.tmp-*")) == []
